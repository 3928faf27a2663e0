"""How the tests launch Chromium: Debian's build, fake media devices, media on loopback."""

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Without it Chromium never pairs with the server's 127.0.0.1 candidates.
    "--allow-loopback-in-peer-connection",
    # Remote videos must play without a click in a headless page.
    "--autoplay-policy=no-user-gesture-required",
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
]
