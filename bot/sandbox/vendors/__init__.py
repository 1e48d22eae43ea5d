"""Fakes of the vendors' APIs, each a small ASGI app that validates what it receives against the
vendor's spec (``../shared/specs``, see ``bot.sandbox.specs``) and records it for tests.

``pagerduty``, ``statuspage``, ``argocd``, ``argo_rollouts``, ``github`` (Actions), ``github_checks``,
``prometheus``, ``health``; ``deploy`` holds the helpers of the deploy-tool fakes and the fake ``helm``
and ``kubectl`` executables in ``fake_bin/``.
"""
