"""Print the secret webhooks are signed with, for the application that verifies them."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the Standard Webhooks secret (WEBHOOK_SECRET, or the one derived from SECRET_KEY)."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(settings.WEBHOOK_SECRET)
