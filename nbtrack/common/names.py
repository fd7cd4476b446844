"""Run ids and display names (``lyric-dream-3``), made offline."""

from __future__ import annotations

import secrets
import string

_ID_ALPHABET = string.ascii_lowercase + string.digits

# fmt: off
ADJECTIVES = (
    "amber", "ancient", "autumn", "bold", "brave", "bright", "calm", "celestial", "clever", "cosmic",
    "crimson", "curious", "dandy", "dark", "dashing", "deep", "desert", "divine", "dry", "eager", "earthy",
    "electric", "elegant", "fancy", "fast", "fearless", "floral", "fluent", "fragrant", "frosty", "gallant",
    "gentle", "giddy", "glad", "glorious", "golden", "graceful", "grateful", "hardy", "hearty", "helpful",
    "hidden", "honest", "icy", "jolly", "keen", "kind", "lilac", "lively", "lucky", "lunar", "lyric",
    "magic", "major", "mellow", "misty", "morning", "noble", "northern", "olive", "pious", "polar", "proud",
    "quiet", "radiant", "rare", "restful", "rich", "rosy", "royal", "rural", "sage", "scarlet", "serene",
    "silent", "silver", "smooth", "snowy", "solar", "spring", "stellar", "still", "stoic", "summer", "sunny",
    "swift", "tender", "twilight", "vague", "vibrant", "vivid", "wandering", "warm", "wild", "winter",
    "wise", "woven", "young", "zesty",
)
NOUNS = (
    "aurora", "bird", "blaze", "bloom", "breeze", "brook", "butterfly", "canyon", "cedar", "cloud", "comet",
    "cosmos", "dawn", "darkness", "deluge", "dew", "disco", "dream", "dust", "eon", "feather", "fern",
    "field", "firefly", "flower", "fog", "forest", "frog", "frost", "galaxy", "glade", "glitter", "grass",
    "haze", "hill", "lake", "leaf", "light", "meadow", "moon", "morning", "mountain", "night", "oasis",
    "ocean", "paper", "pine", "planet", "plasma", "pond", "puddle", "rain", "resonance", "river", "sea",
    "shadow", "shape", "sky", "smoke", "snow", "sound", "spaceship", "spark", "star", "station", "stone",
    "sun", "sunset", "surf", "thunder", "tree", "universe", "valley", "violet", "voice", "water", "wave",
    "wildflower", "wind", "wood",
)
# fmt: on


def new_run_id(length: int = 8) -> str:
    """A short random run id such as ``3k9x0qpa`` (36^8 ≈ 2.8e12 values)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def new_display_name(sequence: int) -> str:
    """An adjective-noun-N display name; N is the run's sequence number in its project."""
    return f"{secrets.choice(ADJECTIVES)}-{secrets.choice(NOUNS)}-{sequence}"
