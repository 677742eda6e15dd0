from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    name = "exceptions"

    def ready(self) -> None:
        from django.urls import reverse

        from audit.links import register_object_link
        from exceptions.receivers import on_attention_needed
        from workflows.signals import attention_needed

        attention_needed.connect(on_attention_needed, dispatch_uid="exceptions.open_case")
        # The trail links an entry to the page of its case or event; those pages are here.
        register_object_link("exceptions.exceptioncase", lambda pk: reverse("case", args=[pk]))
        register_object_link("workflows.event", lambda pk: reverse("event", args=[pk]))
        register_object_link("approval_request", lambda pk: reverse("approval", args=[pk]))
