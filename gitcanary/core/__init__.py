"""The pure rollout core: spec + status + observations -> decision, with no I/O.

Holds the state machine (`rollout`), what the edges observed (`observations`), Flagger's webhook
gates (`gates`), which manual request fits which phase (`manual_rules`), and where `--rewrite-url`
sends an in-cluster URL (`urlmap`). It may import only
`gitcanary.spec` and the foundations (`errors`, `duration`); tests/test_layout.py fails the build
when anything here reaches git, httpx, kubernetes, PyGithub, subprocess or sockets.
"""
