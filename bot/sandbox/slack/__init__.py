"""The Slack workspace emulator (tests and ``cmdcenter demo``).

- ``emulator.py``: the server (``start_slack_emulator``, ``build_slack_emulator``): the Web API,
  response URLs, file uploads and Socket Mode. It is the public surface: it re-exports the
  workspace and its models (``SlackWorkspace``, ``Message``, ``Channel``, ``Envelope``…).
- ``driver.py``: ``SlackDriver`` sends the bot slash commands, events and interactions the way Slack
  does: signed HTTP requests, or envelopes over Socket Mode (``SlackDriver.socket(emulator)``).
- private modules: ``_workspace`` (the in-memory state), ``_models``, ``_blocks`` (Block Kit
  checks), ``_dispatch``/``_context``/``_methods_*`` (the Web API methods), ``_spec`` (the Web
  API spec), ``_responses`` (replies to slash commands and interactions), ``_socket_mode``
  (Socket Mode: the protocol, acks, disconnects, redeliveries).
"""
