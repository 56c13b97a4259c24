"""Real servers the integration tests start for themselves (RabbitMQ...), private to one test session."""
