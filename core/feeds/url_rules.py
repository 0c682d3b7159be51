"""The tables behind :mod:`core.feeds.canonical_url`: what is tracking, what is an AMP or
mobile variant, which fragments only point inside one article.

No package on PyPI keeps a list fit for a dedupe key: w3lib has none, url-normalize keeps
per-site allowlists, courlan's tracker pattern also drops content parameters (any name
containing ``source``, ``session``, ``ref`` or ``campaign``) and merges repeated
parameters, and the ClearURLs-based packages either download their rules at run time or
run a native binary. So the table is ours, taken name by name from the lists browsers and
blockers maintain (Firefox's query stripping list, Brave's, AdGuard's TrackParam filter,
Neat URL, Miniflux's urlcleaner) and from Media Cloud's URL tests, keeping only names that
never select content. A name missing here costs a duplicate; a content name put here
would merge two articles, so the list errs on the short side.
"""

from __future__ import annotations

import re

#: Query parameters that only identify a campaign, click, share or referrer, on any site.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "fb_action_ids", "fb_action_types", "fb_ref", "fb_source",  # Facebook
        "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "srsltid",  # Google Ads / Merchant
        "msclkid",  # Microsoft Ads
        "yclid", "ysclid", "_openstat",  # Yandex
        "twclid", "ttclid", "li_fat_id", "rb_clickid", "irclickid", "epik",  # ad networks
        "igshid", "igsh",  # Instagram share id
        "mc_cid", "mc_eid", "mc_tc",  # Mailchimp
        "_hsenc", "_hsmi", "hsctatracking",  # HubSpot
        "mkt_tok",  # Marketo
        "_kx",  # Klaviyo
        "ck_subscriber_id", "ml_subscriber", "ml_subscriber_hash", "_bta_tid", "_bta_c",  # mail
        "trk_contact", "trk_msg", "trk_module", "trk_sid",  # Listrak
        "s_cid", "sc_cid",  # Adobe Analytics
        "cmpid", "intcmp", "ocid", "ncid", "ito", "mbid",  # publishers' campaign ids
        "ns_campaign", "ns_mchannel", "ns_source", "ns_linkname", "ns_fee",  # comScore (BBC)
        "ref_src", "ref_url", "__twitter_impression",  # Twitter embeds
        "_ga", "_gl",  # Google Analytics cross-domain linker
        "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3", "at_custom4",
        "guccounter", "guce_referrer", "guce_referrer_sig", "soc_src", "soc_trk",  # Yahoo
        "wickedid", "vero_conv", "vero_id", "oly_anon_id", "oly_enc_id",
    }
)  # fmt: skip

#: Parameter-name prefixes that are tracking-only (``utm_source``, ``wt.mc_id``, ``wt_mc``).
TRACKING_PREFIXES = ("utm_", "wt.", "wt_", "__hs", "hsa_", "mtm_", "pk_", "piwik_", "oly_")

#: Ambiguous parameters dropped only with tracking values: ``ref`` is a branch on GitHub
#: but ``?ref=rss`` elsewhere; Medium/Hacker Noon append ``source=rss----<hash>``.
TRACKING_VALUES: dict[str, re.Pattern[str]] = {
    "ref": re.compile(r"(?i)^(rss|feed|feeds|feedly|atom|newsletter|twitter|facebook|hn|br_tf)$"),
    "source": re.compile(r"(?i)^rss\b"),
    "from": re.compile(r"(?i)^(rss|feed|feeds|feedly|newsletter)$"),
    "partner": re.compile(r"(?i)^(rss|feed|feeds)$"),
    "feature": re.compile(r"(?i)^(share|shared|youtu\.be|emb_logo|emb_title)$"),
}

#: Tracking parameters of one site (and its subdomains) that are content elsewhere:
#: ``si`` is a share id on YouTube and Spotify; the New York Times marks social shares,
#: A/B tests and its article counter (from Media Cloud's URL tests).
HOST_TRACKING_PARAMS: dict[str, frozenset[str]] = {
    "youtube.com": frozenset({"si", "pp", "ab_channel", "feature"}),
    "youtu.be": frozenset({"si", "feature"}),
    "open.spotify.com": frozenset({"si"}),
    "nytimes.com": frozenset(
        {"smid", "smtyp", "_r", "abt", "abg", "emc", "partner", "nl"}
        | {"bicmp", "bicmlukp", "bicmst", "bicmet"}  # the BI ad-campaign set
    ),
    "theguardian.com": frozenset({"cmp"}),
    "adelaidenow.com.au": frozenset({"nk"}),
}

#: Query switches that only select the AMP rendering of the same article (key only).
AMP_PARAMS: dict[str, re.Pattern[str]] = {
    "amp": re.compile(r"(?i)^(|1|true|yes)$"),
    "outputtype": re.compile(r"(?i)^amp$"),
}

#: AMP hosts whose article paths are the canonical site's under another name.
AMP_HOSTS: dict[str, str] = {
    "amp.theguardian.com": "theguardian.com",
}

#: Host prefixes that name another rendering of the same site: dropped from the key while
#: a dot-separated name stays (``m.example.com`` -> ``example.com``; ``m.com`` is kept).
#: ``www2.``, ``beta.``, ``blog.`` are not here: they are often other servers or sites.
VARIANT_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")

#: Directory index pages that name the directory itself (Apache's DirectoryIndex set).
INDEX_PAGES = frozenset({"index.html", "index.htm", "index.shtml", "index.php"})

#: The last path segment before ``/amp`` must name an article for ``/amp`` to be an AMP
#: switch: a slug of two or more words, a file, a long number or a mixed id. ``amp`` after
#: a one-word segment (``/category/amp/``, ``/reviews/guitar/amp``) is content: kept.
ARTICLE_SEGMENT = re.compile(
    r"(?i)^(?:[\w%.]+[-_][\w%.-]*[a-z0-9]|.+\.[a-z]{2,5}|\d{5,}|(?=[a-z-]*\d)(?=\d*[a-z])[a-z0-9]{6,})$"
)

#: YouTube paths that name one video (``/shorts/ID``, ``/embed/ID``, ...) -> its watch URL.
YOUTUBE_HOSTS = frozenset({"youtube.com", "youtube-nocookie.com"})
YOUTUBE_VIDEO_PATH = re.compile(r"^/(?:shorts|embed|v|live)/([A-Za-z0-9_-]{6,})/?$")
YOUTUBE_SHORT_PATH = re.compile(r"^/([A-Za-z0-9_-]{6,})/?$")

#: Fragments that carry tracking, never an address: Tynt ``#ixzz...``, AT Internet
#: ``#xtor=RSS-1``, Echobox, AddThis ``#.XYZ12ab``, ShareThis ``#sthash.X.dpuf``, utm in
#: the fragment, browsers' text fragments ``#:~:text=``. Dropped from the shown URL too.
TRACKING_FRAGMENT = re.compile(
    r"(?i)^(?:ixzz[\w-]*|xtor=.*|echobox=.*|\.[a-z0-9_-]{6,}|sthash\..*|utm_[a-z]+=.*"
    r"|at_medium=.*|at_campaign=.*|:~:.*|)$"
)

#: Fragments that point inside the same article (WordPress "read more" and comment form
#: anchors, page furniture): not part of the key. Any other fragment is, because it can be
#: all that tells two posts apart (``/2017/06/26.html#a080605``, ``/#!/story/2``); a
#: comment's own anchor (``#comment-12``) names another item and stays too.
NAVIGATION_FRAGMENT = re.compile(
    r"(?i)^(?:more(?:-\d+)?|comments?|respond|reply|disqus_thread|comment-form|top|main"
    r"|content|main-content|maincontent|article|story|post|entry|page|skip|start"
    r"|comments-section|discussion|share)$"
)
