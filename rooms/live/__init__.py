"""Live state: rooms, sessions, processes, streams and media nodes right now.

``contract`` says what the live state does, ``memory`` and ``redis`` keep
it, ``registry`` tracks streams and room→node pins, and ``context`` is the
one place a process keeps these objects.
"""
