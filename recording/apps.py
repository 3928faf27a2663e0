from django.apps import AppConfig


class RecordingConfig(AppConfig):
    name = "recording"
    verbose_name = "Recording"

    def ready(self) -> None:
        from recording import checks, receivers  # noqa: F401  (registers the checks and signal receivers)

        # A bad OFFLINE_MIXER_CONFIG must stop start-up, not fail the first mix after a meeting.
        from recording.mixer_config import check_mixer_config

        check_mixer_config()
