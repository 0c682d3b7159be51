"""newsmon core: domain and persistence. Imports nothing from workers, scheduler or api."""
