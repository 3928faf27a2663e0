"""How loaded a media node is, in legs: the number a new room's placement
compares.

A leg is one peer connection a node serves (a publication or a play).
Forwarding one costs 0.004 to 0.006 CPU-seconds per second, so one core
forwards some 200 legs (docs/PERFORMANCE.md, "Media: forwarding cost per
subscriber"); the node's measured CPU share counts in the same unit. For
plain forwarding that about doubles each leg; what legs alone miss weighs
in on top (recording, a heavy bitrate, an embedded node sharing its process
with the web side). Both registries rank nodes with
these functions; the Redis one repeats ``placement_score`` in
``lua/room_node_place.lua``, with ``NEW_ROOM_LEGS`` passed to it.
"""

from __future__ import annotations

from rooms.media.messages import LoadReport

LEGS_PER_CORE = 200
# A room pinned to a node that serves nothing of it yet (placed since the
# node's last heartbeat, or between publishes) counts as the rooms the node
# serves do on average (its score per served room), and at least this many
# legs: a publisher and a player. So a burst of new rooms spreads at once
# instead of all landing on the node that looked emptiest at its last
# heartbeat; weighed as the node's actual rooms, two new meetings of five
# (25 legs each) do not both go to a node that was 2 legs lighter.
NEW_ROOM_LEGS = 2


def load_score(load: LoadReport) -> float:
    """A heartbeat's load in legs."""
    return load.published + load.played + LEGS_PER_CORE * load.cpu


def new_room_weight(score: float, *, served_rooms: int) -> float:
    """What one room pinned to a node but not yet in its heartbeat counts."""
    return max(float(NEW_ROOM_LEGS), score / served_rooms if served_rooms > 0 else 0.0)


def placement_score(score: float, *, pinned_rooms: int, served_rooms: int) -> float:
    """The node's reported ``score`` plus the rooms pinned to it that its
    heartbeat did not count yet."""
    return score + new_room_weight(score, served_rooms=served_rooms) * max(0, pinned_rooms - served_rooms)


def node_score(load: LoadReport | None, *, pinned_rooms: int) -> float:
    """A node's placement score from its last heartbeat (None: none yet)
    and the rooms pinned to it now."""
    if load is None:
        return placement_score(0.0, pinned_rooms=pinned_rooms, served_rooms=0)
    return placement_score(load_score(load), pinned_rooms=pinned_rooms, served_rooms=load.rooms)
