"""Generate the sentence-fusion data set of ``pygen demo`` (deterministic, fixed seed).

    python -m pygen.demo.make_data      # rewrites pygen/demo/data/fusion_{train,test}.jsonl

Each pair fuses two short sentences into one, as in DiscoFuse: a discourse adverb of the second
sentence becomes a connective ("however," -> "but", "as a result," -> "so", "after that," ->
"before", "... anyway" -> "although", "that is why" -> "because" moved to the front), a repeated
person's name becomes "he"/"she", a repeated noun phrase subject is dropped (verb-phrase
coordination), a repeated predicate is shared ("... too" -> "x and y did it"), and a repeated
object becomes a relative clause ("who" for people, "which" for things). Every word is a whole
word of the uncased BERT vocabulary. Test pairs are held out: no test source appears in the
training file.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SEED = 0
NUM_TRAIN = 4000
NUM_TEST = 300
DATA_DIR = Path(__file__).parent / "data"

MALE = ["john", "james", "david", "michael", "peter", "paul", "mark", "tom", "george", "frank", "henry", "jack",
        "sam", "daniel", "robert", "william", "steve", "chris"]
FEMALE = ["mary", "anna", "sarah", "emma", "lucy", "kate", "laura", "susan", "alice", "julia", "helen", "rachel",
          "linda", "emily", "grace", "karen", "jane", "amy"]
PRONOUN = {**{name: "he" for name in MALE}, **{name: "she" for name in FEMALE}}
NOUN_PHRASES = ["the farmer", "the doctor", "the teacher", "the pilot", "the driver", "the nurse", "the chef",
                "the student", "the manager", "the artist", "the captain", "the lawyer", "my brother", "my sister",
                "our neighbor", "the old man", "the young woman", "the coach", "the baker", "the engineer"]

TRANSITIVE = ["bought", "sold", "painted", "cleaned", "fixed", "found", "lost", "washed", "opened", "closed",
              "checked", "moved", "carried", "borrowed", "built", "repaired", "ordered", "dropped"]
ADJECTIVES = ["old", "new", "red", "blue", "small", "large", "green", "broken", "heavy", "white", "black", "wooden",
              "empty", "cheap", "expensive", "dirty", "yellow", "strange"]
NOUNS = ["car", "house", "door", "window", "box", "table", "chair", "bike", "boat", "bag", "letter", "book", "phone",
         "lamp", "fence", "truck", "clock", "desk", "ladder", "radio"]
INTRANSITIVE = ["arrived late", "left early", "stayed at home", "slept well", "worked late", "felt tired",
                "walked to school", "went to bed", "missed the bus", "lost the game", "won the race",
                "called the office", "waited outside", "laughed loudly", "cooked dinner", "read the news",
                "played the piano", "watched a movie", "took a walk", "ate lunch", "drove to town", "caught a cold"]
TIMES = ["", "", "", " on monday", " last night", " in the morning", " after lunch", " yesterday", " on friday",
         " this week", " at noon", " in the evening"]
# Relative clauses: "... a red box. the box was empty." -> "... a red box which was empty.", and with
# "who" for people: "... met a young doctor. the doctor spoke three languages." -> "... doctor who spoke ..."
OBJECT_PREDICATES = ["was very heavy", "had a broken lock", "cost a lot", "was on sale", "smelled strange",
                     "looked brand new", "belonged to the school", "came from china", "needed a new coat of paint",
                     "was too small", "had no handle", "made a loud noise"]
PEOPLE = ["doctor", "nurse", "teacher", "pilot", "driver", "chef", "student", "manager", "artist", "lawyer", "farmer",
          "baker", "engineer", "singer", "waiter", "soldier", "dentist", "writer"]
PERSON_VERBS = ["met", "hired", "visited", "called", "helped", "thanked", "followed", "interviewed"]
PERSON_ADJECTIVES = ["young", "old", "tired", "friendly", "nervous", "famous", "angry", "quiet", "busy", "new"]
PERSON_PREDICATES = ["was very tired", "looked worried", "spoke three languages", "had a long beard", "lived next door",
                     "worked at the bank", "knew my father", "smiled a lot", "came from china", "had a loud voice"]

# Adverb opening the second sentence -> connective of the fused sentence, and whether a comma precedes it.
CONNECTIVES = {
    "contrast": ("however,", ", but"),
    "result": ("as a result,", ", so"),
    "cause": ("this was because", " because"),
    "temporal": ("after that,", " before"),
}


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def object_phrase(rng: random.Random) -> tuple[str, str]:
    """(noun phrase, head noun), e.g. ("the broken clock", "clock")."""
    adjective, noun = rng.choice(ADJECTIVES), rng.choice(NOUNS)
    det = rng.choice(["the", article(adjective)])
    return f"{det} {adjective} {noun}", noun


def verb_phrase(rng: random.Random) -> str:
    if rng.random() < 0.5:
        vp = rng.choice(INTRANSITIVE)
    else:
        vp = f"{rng.choice(TRANSITIVE)} {object_phrase(rng)[0]}"
    return vp + rng.choice(TIMES)


def subject(rng: random.Random) -> str:
    return rng.choice(MALE + FEMALE) if rng.random() < 0.6 else rng.choice(NOUN_PHRASES)


def relative_clause(rng: random.Random) -> dict[str, str]:
    s1 = subject(rng)
    if rng.random() < 0.5:
        verb, adjective, noun = rng.choice(TRANSITIVE), rng.choice(ADJECTIVES), rng.choice(NOUNS)
        predicate, pronoun = rng.choice(OBJECT_PREDICATES), "which"
    else:
        verb, adjective, noun = rng.choice(PERSON_VERBS), rng.choice(PERSON_ADJECTIVES), rng.choice(PEOPLE)
        predicate, pronoun = rng.choice(PERSON_PREDICATES), "who"
    obj = f"{rng.choice(['the', article(adjective)])} {adjective} {noun}"
    return {"type": "relative", "source": f"{s1} {verb} {obj}. the {noun} {predicate}.",
            "target": f"{s1} {verb} {obj} {pronoun} {predicate}."}


def fuse(rng: random.Random) -> dict[str, str]:
    kind = rng.choice(["pronoun", "coordination", "relative", "shared", "concession", "reason", *CONNECTIVES])
    vp1, vp2 = verb_phrase(rng), verb_phrase(rng)
    while vp2 == vp1:
        vp2 = verb_phrase(rng)
    if kind == "pronoun":
        name = rng.choice(MALE + FEMALE)
        return {"type": kind, "source": f"{name} {vp1}. {name} {vp2}.",
                "target": f"{name} {vp1}, and {PRONOUN[name]} {vp2}."}
    if kind == "coordination":
        np = rng.choice(NOUN_PHRASES)
        return {"type": kind, "source": f"{np} {vp1}. {np} {vp2}.", "target": f"{np} {vp1} and {vp2}."}
    if kind == "relative":
        return relative_clause(rng)
    s1 = subject(rng)
    if kind == "shared":
        s2 = subject(rng)
        while s2 == s1:
            s2 = subject(rng)
        return {"type": kind, "source": f"{s1} {vp1}. {s2} {vp1} too.", "target": f"{s1} and {s2} {vp1}."}
    # A third of the time the same person acts twice: the repeated name becomes a pronoun.
    s2 = s1 if s1 in PRONOUN and rng.random() < 0.33 else subject(rng)
    while s2 == s1 and s1 not in PRONOUN:
        s2 = subject(rng)
    ref2 = PRONOUN[s1] if s2 == s1 else s2
    if kind == "concession":
        return {"type": kind, "source": f"{s1} {vp1}. {s2} {vp2} anyway.",
                "target": f"although {s1} {vp1}, {ref2} {vp2}."}
    if kind == "reason":
        return {"type": kind, "source": f"{s1} {vp1}. that is why {s2} {vp2}.",
                "target": f"because {s1} {vp1}, {ref2} {vp2}."}
    adverb, connective = CONNECTIVES[kind]
    return {"type": kind, "source": f"{s1} {vp1}. {adverb} {s2} {vp2}.",
            "target": f"{s1} {vp1}{connective} {ref2} {vp2}."}


def make_splits(seed: int = SEED, num_train: int = NUM_TRAIN, num_test: int = NUM_TEST):
    rng = random.Random(seed)
    seen: set[str] = set()
    pairs = []
    while len(pairs) < num_train + num_test:
        pair = fuse(rng)
        if pair["source"] not in seen:
            seen.add(pair["source"])
            pairs.append(pair)
    return pairs[:num_train], pairs[num_train:]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def main() -> None:
    train, test = make_splits()
    DATA_DIR.mkdir(exist_ok=True)
    write_jsonl(DATA_DIR / "fusion_train.jsonl", train)
    write_jsonl(DATA_DIR / "fusion_test.jsonl", test)
    print(f"wrote {len(train)} training and {len(test)} test pairs to {DATA_DIR}")


if __name__ == "__main__":
    main()
