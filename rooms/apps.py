from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "rooms"
    verbose_name = "Rooms"

    def ready(self) -> None:
        # The media plane reads private aiortc attributes: a different aiortc
        # must stop the server at start-up, not fail the first publish.
        from rooms.media.tap import check_aiortc_internals

        check_aiortc_internals()

        from rooms import checks  # noqa: F401  (registers the deploy checks)
