"""How the tests launch Chromium: Debian's build, fake media devices, media on loopback."""

CHROMIUM = "/usr/bin/chromium"
# Chromium as a person runs it: the fake devices stand in for a camera and a
# click on "Allow", the rest keep a headless browser off the network.
EVERYDAY_CHROMIUM_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
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
CHROMIUM_ARGS = [
    *EVERYDAY_CHROMIUM_ARGS,
    # Without it Chromium never pairs with the server's 127.0.0.1 candidates:
    # the loopback-only test setting, never what a person runs.
    "--allow-loopback-in-peer-connection",
]
