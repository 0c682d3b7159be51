"""Story text written for the clustering tests: one wire lead and a daily briefing's
leads (a recurring headline with a new lead every day)."""

from __future__ import annotations

#: The lead of one wire story that several outlets copy under their own headlines.
RATES = (
    "The central bank left its benchmark rate at 4.5 percent on Wednesday, saying it wanted "
    "more evidence that inflation was cooling before it would consider cutting."
)
#: Three days of "Here's what you need to know today".
BRIEFINGS = [
    "Good morning. Lawmakers return to the capital with a budget deadline eight days away, "
    "and the central bank publishes the minutes of its last meeting this afternoon.",
    "Good morning. A storm system is moving up the east coast, airports in three states "
    "have cancelled hundreds of flights, and the monthly jobs report lands at 8:30.",
    "Good morning. The transit strike enters its second day, a court rules on the ballot "
    "dispute, and a new vaccine trial begins enrolling volunteers in four cities.",
]
