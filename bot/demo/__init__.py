"""``cmdcenter demo``: the whole bot in a local sandbox workspace, with a web console.

    cmdcenter demo                                   # console at http://127.0.0.1:8000/
    cmdcenter demo --scenario checkout-502           # the console plays a scripted SEV1
    cmdcenter demo --scenario checkout-502 --headless  # no console: run it, print a summary
    cmdcenter demo --socket                          # the bot connected over Socket Mode, not HTTP

The command itself is ``bot.demo.command``; nothing is imported, bound or read until its
:func:`~bot.demo.command.run_demo` runs.
"""
