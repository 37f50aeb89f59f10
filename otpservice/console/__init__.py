"""The support console at /console/: customer service looks up whether a code reached the
phone, and why not, without an API key. Server-rendered (Jinja2), no JavaScript at all.
Mounted by app.py when OTP_CONSOLE is on (site.py builds its parts)."""
