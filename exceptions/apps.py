from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"

    def ready(self) -> None:
        from exceptions.receivers import on_attention_needed
        from workflows.signals import attention_needed

        attention_needed.connect(on_attention_needed, dispatch_uid="exceptions.open_case")
