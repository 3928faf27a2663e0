from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops.multiprocess import dead_processes_forget

        # Every process (daphne, runmedianode, Celery) starts Django: the
        # one moment all of them pass before they count anything.
        dead_processes_forget()
