"""The sandbox: local stand-ins for Slack and the vendors the bot talks to, for the tests and
``cmdcenter demo``. Only the demo (``bot/demo/``, which ``cmdcenter demo`` imports when it
runs), the tests and the benchmarks import it; the bot's own modules never do.

    slack/      the Slack workspace emulator: the Web API, response URLs and Socket Mode
                (``emulator.py``), and the driver that sends the bot what Slack would, over HTTP
                or Socket Mode (``driver.py``)
    vendors/    fakes of PagerDuty, Statuspage, Argo CD, Argo Rollouts, GitHub, Prometheus and health
                endpoints, plus fake ``helm``/``kubectl`` executables (``vendors/fake_bin/``)
    server.py   serve an ASGI app with uvicorn on 127.0.0.1 in a background thread
    specs.py    find the vendors' API specs (``../shared/specs``) and validate requests against them
    faults.py   fault injection shared by the vendor fakes

Every server binds the loopback address only.
"""
