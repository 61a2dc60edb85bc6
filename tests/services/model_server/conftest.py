from tests.services.model_server.fixtures import guard_path, reward_path, tiny_server  # noqa: F401
