"""The `judge` scorer: a generative LLM judge over an OpenAI-compatible chat-completions API.

Modules: `templates` (replaceable prompt files, in `templates/`), `verdicts` (the JSON verdict
asked for, read strictly), `client` (servers, failover, concurrency), `cache` (verdicts by
model, template and inputs), `answers` (the one answer a judge may see), `scorer` (`JudgeScorer`,
`open_judge_scorer`), `rules` and `hybrid` (`math` consulting the judge on what its rules reject).

Nothing is imported here: the worker pool loads `rules` without the HTTP client.
"""
