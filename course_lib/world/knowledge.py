"""The world's knowledge graph: real facts about US states, countries and animals, plus
generated people. Every fact is a (subject, relation, object) triple; names may span several
words (tokens)."""
from __future__ import annotations

import random

# state: (capital, cities). Capitals are never listed as cities, so each name has one role.
STATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "Texas": ("Austin", ("Dallas", "Houston", "El Paso", "Lubbock")),
    "California": ("Sacramento", ("Oakland", "Los Angeles", "San Diego", "Fresno")),
    "New York": ("Albany", ("Buffalo", "Rochester", "Syracuse", "Ithaca")),
    "Florida": ("Tallahassee", ("Miami", "Tampa", "Orlando", "Jacksonville")),
    "Illinois": ("Springfield", ("Chicago", "Peoria", "Naperville", "Rockford")),
    "Washington": ("Olympia", ("Seattle", "Spokane", "Tacoma", "Yakima")),
    "Georgia": ("Atlanta", ("Savannah", "Augusta", "Macon", "Marietta")),
    "Ohio": ("Columbus", ("Cleveland", "Cincinnati", "Toledo", "Dayton")),
    "Pennsylvania": ("Harrisburg", ("Philadelphia", "Pittsburgh", "Erie", "Scranton")),
    "Michigan": ("Lansing", ("Detroit", "Grand Rapids", "Flint", "Kalamazoo")),
    "Arizona": ("Phoenix", ("Tucson", "Mesa", "Flagstaff", "Yuma")),
    "Colorado": ("Denver", ("Boulder", "Aurora", "Pueblo", "Greeley")),
    "Nevada": ("Carson City", ("Las Vegas", "Reno", "Henderson", "Elko")),
    "Oregon": ("Salem", ("Portland", "Eugene", "Bend", "Medford")),
    "Massachusetts": ("Boston", ("Worcester", "Cambridge", "Lowell", "Quincy")),
    "Tennessee": ("Nashville", ("Memphis", "Knoxville", "Chattanooga", "Clarksville")),
}
# country: (capital, language, continent)
COUNTRIES: dict[str, tuple[str, str, str]] = {
    "France": ("Paris", "French", "Europe"),
    "Germany": ("Berlin", "German", "Europe"),
    "Spain": ("Madrid", "Spanish", "Europe"),
    "Italy": ("Rome", "Italian", "Europe"),
    "Greece": ("Athens", "Greek", "Europe"),
    "Portugal": ("Lisbon", "Portuguese", "Europe"),
    "Russia": ("Moscow", "Russian", "Europe"),
    "Japan": ("Tokyo", "Japanese", "Asia"),
    "China": ("Beijing", "Chinese", "Asia"),
    "India": ("New Delhi", "Hindi", "Asia"),
    "South Korea": ("Seoul", "Korean", "Asia"),
    "Brazil": ("Brasilia", "Portuguese", "South America"),
    "Argentina": ("Buenos Aires", "Spanish", "South America"),
    "Peru": ("Lima", "Spanish", "South America"),
    "Mexico": ("Mexico City", "Spanish", "North America"),
    "Canada": ("Ottawa", "English", "North America"),
    "Egypt": ("Cairo", "Arabic", "Africa"),
    "Kenya": ("Nairobi", "Swahili", "Africa"),
    "Nigeria": ("Abuja", "English", "Africa"),
    "Australia": ("Canberra", "English", "Oceania"),
}
# animal: (class, habitat)
ANIMALS: dict[str, tuple[str, str]] = {
    "lion": ("mammal", "savanna"), "zebra": ("mammal", "savanna"), "camel": ("mammal", "desert"),
    "wolf": ("mammal", "forest"), "bear": ("mammal", "forest"), "whale": ("mammal", "ocean"),
    "dolphin": ("mammal", "ocean"), "monkey": ("mammal", "jungle"), "eagle": ("bird", "mountains"),
    "parrot": ("bird", "jungle"), "penguin": ("bird", "ocean"), "owl": ("bird", "forest"),
    "shark": ("fish", "ocean"), "salmon": ("fish", "river"), "trout": ("fish", "river"),
    "lizard": ("reptile", "desert"), "snake": ("reptile", "jungle"), "crocodile": ("reptile", "river"),
}
ANIMAL_PLURALS = {a: ("wolves" if a == "wolf" else a if a in ("salmon", "trout") else a + "s") for a in ANIMALS}
PROFESSIONS = ("teacher", "doctor", "lawyer", "farmer", "baker", "nurse", "pilot", "painter", "singer",
               "writer", "chef", "banker", "dentist", "plumber", "judge")
FIRST_NAMES = ("Ana", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hugo", "Irene", "Jonas",
               "Keiko", "Liam", "Maya", "Nikos", "Olga", "Pedro", "Rosa", "Samir", "Tara", "Victor")
LAST_NAMES = ("Silva", "Okafor", "Novak", "Tanaka", "Moreau", "Kowalski", "Haddad", "Lindqvist",
              "Rossi", "Mendez")
N_PEOPLE = 40


def cities() -> dict[str, str]:
    """city -> state."""
    return {c: s for s, (_, cs) in STATES.items() for c in cs}


def heldout_two_hop_cities() -> tuple[str, ...]:
    """Cities whose two-hop sentences never appear in training (the last city of each state, so
    three of every four cities are trained as two-hop); their one-hop facts are trained, so the
    LM's latent composition can be measured on them."""
    return tuple(cs[-1] for _, cs in STATES.values())


def people(seed: int = 0) -> dict[str, tuple[str, str]]:
    """Generated people: name -> (birthplace city, profession). Seeded, so always the same."""
    rng = random.Random(seed)
    names = [f"{f} {l}" for f in FIRST_NAMES for l in LAST_NAMES]
    rng.shuffle(names)
    city_names = sorted(cities())
    return {n: (rng.choice(city_names), rng.choice(PROFESSIONS)) for n in sorted(names[:N_PEOPLE])}


def facts() -> dict[str, dict[str, str]]:
    """relation -> {subject: object}: every one-hop fact, plus the two-hop relation."""
    city_state = cities()
    persons = people()
    return {
        "city_state": city_state,
        "state_capital": {s: cap for s, (cap, _) in STATES.items()},
        "country_capital": {c: v[0] for c, v in COUNTRIES.items()},
        "country_language": {c: v[1] for c, v in COUNTRIES.items()},
        "country_continent": {c: v[2] for c, v in COUNTRIES.items()},
        "person_birthplace": {p: v[0] for p, v in persons.items()},
        "person_profession": {p: v[1] for p, v in persons.items()},
        "animal_class": {a: v[0] for a, v in ANIMALS.items()},
        "animal_habitat": {a: v[1] for a, v in ANIMALS.items()},
        "city_state_capital": {c: STATES[s][0] for c, s in city_state.items()},  # two hops
    }


# entity name -> entity type, for labelling tokens
def entity_types() -> dict[str, str]:
    types = {}
    for s, (cap, cs) in STATES.items():
        types.update({s: "state", cap: "state_capital", **{c: "city" for c in cs}})
    for c, (cap, lang, cont) in COUNTRIES.items():
        types.update({c: "country", cap: "country_capital", lang: "language", cont: "continent"})
    for p in people():
        types[p] = "person"
    for a, (cls, hab) in ANIMALS.items():
        types.update({a: "animal", ANIMAL_PLURALS[a]: "animal", cls: "animal_class", hab: "habitat"})
    types.update({p: "profession" for p in PROFESSIONS})
    return types
