from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"

    def ready(self) -> None:
        # Bind shared tasks to Handoff's Celery app in every process that sets up Django.
        from console import celery  # noqa: F401
