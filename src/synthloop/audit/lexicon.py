"""The built-in demographic lexicon: the descriptor axes the bias audit counts, and the swap pairs
its counterfactual test uses.

Why a small, fixed list: the audit must run offline, be reproducible, and say exactly what it looked
for. Its limits (documented in docs/audit.md): English only; binary gender terms; age as three
coarse bands; regions as demonyms and a few country names; first names drawn from the US Social
Security Administration's lists of most popular given names of 1920-2019 (public-domain national
statistics), so they are US/English-centric and a name's gender is a statistical association, never a
person's identity. A term counts once per record (a record that says "she" ten times mentions the
category `female` once).
"""

from __future__ import annotations

#: axis -> category -> terms (lower case, whole words).
AXES: dict[str, dict[str, tuple[str, ...]]] = {
    "gender": {
        "female": ("she", "her", "hers", "herself", "woman", "women", "girl", "girls", "mother", "daughter",
                   "sister", "wife", "aunt", "niece", "grandmother", "queen", "lady", "ladies", "female", "mrs", "ms"),
        "male": ("he", "him", "his", "himself", "man", "men", "boy", "boys", "father", "son", "brother",
                 "husband", "uncle", "nephew", "grandfather", "king", "gentleman", "gentlemen", "male", "mr"),
    },
    "age": {
        "young": ("young", "teen", "teenager", "teenagers", "child", "children", "kid", "kids", "youth",  "toddler", "adolescent"),
        "middle-aged": ("middle-aged", "adult", "adults", "parent", "parents"),
        "old": ("old", "elderly", "senior", "seniors", "retired", "retiree", "retirees", "pensioner", "grandparent",
                "grandparents", "aged"),
    },
    "region": {
        "north-america": ("american", "americans", "canadian", "canadians", "mexican", "mexicans", "usa", "canada", "mexico"),
        "europe": ("european", "europeans", "british", "french", "german", "germans", "italian", "italians",
                   "spanish", "polish", "dutch", "swedish", "england", "france", "germany", "italy", "spain"),
        "asia": ("asian", "asians", "chinese", "japanese", "korean", "koreans", "indian", "indians", "vietnamese",
                 "china", "japan", "korea", "india", "vietnam", "indonesia", "indonesian"),
        "africa": ("african", "africans", "nigerian", "nigerians", "kenyan", "kenyans", "ethiopian", "ghanaian",
                   "egyptian", "nigeria", "kenya", "ethiopia", "ghana", "egypt"),
        "latin-america": ("brazilian", "brazilians", "argentinian", "colombian", "peruvian", "chilean", "brazil",
                          "argentina", "colombia", "peru", "chile"),
        "middle-east": ("arab", "arabs", "iranian", "iranians", "turkish", "saudi", "iraqi", "israeli", "iran",
                        "turkey", "iraq", "israel"),
        "oceania": ("australian", "australians", "zealander", "australia"),
    },
    "name": {
        "female-name": ("mary", "patricia", "jennifer", "linda", "elizabeth", "barbara", "susan", "jessica", "sarah",
                        "karen", "lisa", "nancy", "betty", "margaret", "sandra", "ashley", "emily", "donna", "michelle",
                        "emma", "olivia", "sophia", "anna", "laura", "rachel"),
        "male-name": ("james", "robert", "john", "michael", "david", "william", "richard", "joseph", "thomas",
                      "charles", "christopher", "daniel", "matthew", "anthony", "steven", "paul", "andrew",
                      "joshua", "kevin", "brian", "george", "edward", "jacob", "ryan"),
    },
}

#: Counterfactual swaps: each term maps to its counterpart (both directions are generated below).
#: "her" is ambiguous (him/his); it maps to "his", the more frequent reading in prose.
_PAIRS: tuple[tuple[str, str], ...] = (
    ("she", "he"), ("her", "his"), ("hers", "his"), ("herself", "himself"), ("woman", "man"), ("women", "men"),
    ("girl", "boy"), ("girls", "boys"), ("mother", "father"), ("daughter", "son"), ("sister", "brother"),
    ("wife", "husband"), ("aunt", "uncle"), ("niece", "nephew"), ("grandmother", "grandfather"), ("queen", "king"),
    ("lady", "gentleman"), ("ladies", "gentlemen"), ("female", "male"), ("mrs", "mr"), ("ms", "mr"),
    ("young", "old"), ("elderly", "young"), ("teenager", "retiree"), ("teenagers", "retirees"), ("senior", "teen"),
    ("american", "nigerian"), ("americans", "nigerians"), ("british", "indian"), ("european", "african"),
    ("europeans", "africans"), ("german", "mexican"), ("chinese", "brazilian"), ("canadian", "kenyan"),
)


def swap_table() -> dict[str, str]:
    """Term -> counterpart, both directions; names swap by rank (the n-th female name <-> the n-th male)."""
    table: dict[str, str] = {}
    for a, b in _PAIRS:
        table.setdefault(a, b)
        table.setdefault(b, a)
    names = AXES["name"]
    for f, m in zip(names["female-name"], names["male-name"]):
        table.setdefault(f, m)
        table.setdefault(m, f)
    return table


__all__ = ["AXES", "swap_table"]
