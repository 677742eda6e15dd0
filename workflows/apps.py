from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"

    def ready(self) -> None:
        from audit.actors import register_memberships_provider
        from workflows.selectors import memberships_at

        # Audit entries freeze the actor's team memberships; teams live here.
        register_memberships_provider(memberships_at)
