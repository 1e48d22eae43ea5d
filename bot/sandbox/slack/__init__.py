"""The Slack workspace emulator (tests and ``cmdcenter demo``).

- ``emulator.py``: the server (``start_slack_emulator``, ``build_slack_emulator``): the Web API,
  response URLs and file uploads. It is the public surface: it re-exports the workspace and its
  models (``SlackWorkspace``, ``Message``, ``Channel``…).
- ``driver.py``: ``SlackDriver`` sends the bot slash commands, events and interactions the way Slack
  does (signed HTTP requests).
- private modules: ``_workspace`` (the in-memory state), ``_models``, ``_blocks`` (Block Kit
  checks), ``_dispatch``/``_context``/``_methods_*`` (the Web API methods), ``_spec`` (the Web
  API spec).
"""
