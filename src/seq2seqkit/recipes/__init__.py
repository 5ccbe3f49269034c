"""Recipes: the YAML files beside this module (installed with the package) and reading any recipe.

``load_config(RECIPE)`` takes a path to a YAML file or the name of a built-in recipe (``g2p``,
``mt-debian-en-de``; ``seq2seqkit recipes`` lists them), applies ``--set`` overrides and gives the
typed ``Config`` for the task it names (``tasks.task_config``: the task's defaults fill the gaps).
A name that is both a file in the working directory and a built-in recipe is refused: the user
must say which.

The built-in recipes that read corpora from ``../shared/data`` (beside a checkout) name, through
``check_corpora``, what to fetch and where to put it when the corpus is missing.
"""

from __future__ import annotations

import difflib
import os
from importlib import resources
from pathlib import Path

import yaml

from seq2seqkit.config import Config, DataConfig, apply_overrides, read_recipe
from seq2seqkit.errors import ConfigError, DataError
from seq2seqkit.tasks import task_config

SUFFIXES = (".yaml", ".yml")

# corpus folder under ../shared/data -> (what it is and where it comes from, what goes in the folder)
CORPORA = {
    "debian": (
        "Debian package descriptions aligned with their DDTP translations (Debian 12 'bookworm': "
        "main/i18n/Translation-{en,de,fr} on any Debian mirror, paired by description md5)",
        "en-de/, en-fr/ and summarize/ folders of {train,valid,test}.{en,de | en,fr | src,tgt}, "
        "one segment per line",
    ),
    "squad": (
        "SQuAD v1.1 (https://rajpurkar.github.io/SQuAD-explorer/, CC BY-SA 4.0)",
        "train-v1.1.json, valid-v1.1.json and test-v1.1.json in SQuAD's JSON layout "
        "(e.g. the official train file split by article, and dev-v1.1.json as test)",
    ),
    "an4": (
        "CMU AN4 read speech (http://www.speech.cs.cmu.edu/databases/an4/)",
        "train.tsv and valid.tsv manifests: a WAV path relative to the folder, a TAB, the transcript",
    ),
}


def builtin_dir() -> Path:
    return Path(str(resources.files(__name__)))


def builtin_names() -> list[str]:
    return sorted(path.stem for path in builtin_dir().glob("*.yaml"))


def resolve(recipe: str | Path) -> Path:
    """The YAML file that ``recipe`` names: a path, or a built-in recipe's name."""
    path = Path(recipe)
    builtin = builtin_dir() / f"{recipe}.yaml"
    bare = isinstance(recipe, str) and "/" not in recipe and os.sep not in recipe
    is_name = bare and path.suffix not in SUFFIXES and builtin.is_file()
    if is_name and path.exists():
        raise ConfigError(
            f"{recipe}: both a file here and a built-in recipe; write ./{recipe} for the file, "
            f"or run from another folder for the recipe"
        )
    if is_name:
        return builtin
    if path.suffix in SUFFIXES or path.exists():
        return path
    close = difflib.get_close_matches(str(recipe), builtin_names(), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{recipe}: no such recipe file or built-in recipe{hint}, nor data "
        f"(built-in: {', '.join(builtin_names())})"
    )


def is_recipe(argument: str) -> bool:
    """Whether ``seq2seqkit train ARGUMENT`` names a recipe (a YAML file, or a built-in recipe's
    name) rather than data (any other file or folder). A name that is both is refused."""
    path = Path(argument)
    if path.suffix in SUFFIXES:
        return True
    if (builtin_dir() / f"{argument}.yaml").is_file() and "/" not in argument and os.sep not in argument:
        resolve(argument)  # refuses a name that is also a file or folder here
        return True
    if path.exists():
        return False
    resolve(argument)  # no such recipe, with the closest name
    return True


def load_config(recipe: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a recipe (path or built-in name), apply ``key.path=value`` overrides, validate.

    A recipe may start from another with ``base: other.yaml`` (relative to its own folder): its
    sections are merged over the base's, key by key, so a variant states only what differs.
    """
    path = resolve(recipe)
    return task_config(apply_overrides(read_recipe(path), overrides), source=str(path))


def standalone_text(recipe: str | Path) -> str:
    """A recipe's YAML to copy and edit anywhere: the file as written, or, for one that starts
    from a ``base:``, its sections merged over the base's (a copy elsewhere could not find it)."""
    path = resolve(recipe)
    text = path.read_text(encoding="utf-8")
    if "base" not in (yaml.safe_load(text) or {}):
        return text
    merged = yaml.safe_dump(read_recipe(path), sort_keys=False, allow_unicode=True)
    return f"# {path.name} merged over its base\n{merged}"


def listing() -> list[tuple[str, str, str]]:
    """(name, task, description) of each built-in recipe."""
    configs = [(name, load_config(name)) for name in builtin_names()]
    return [(name, config.task, config.description) for name, config in configs]


def check_corpora(data: DataConfig) -> None:
    """Name what to fetch, and where to put it, for a data path under ``shared/data/CORPUS``
    whose corpus folder is missing."""
    for location in (data.train, data.valid, data.test):
        parts = Path(location).parts
        for i in range(len(parts) - 2):
            if parts[i : i + 2] == ("shared", "data") and parts[i + 2] in CORPORA:
                folder = Path(*parts[: i + 3])
                if not folder.is_dir():
                    what, layout = CORPORA[parts[i + 2]]
                    raise DataError(
                        f"{folder}: missing (relative to {Path.cwd()}); this recipe reads {what}: "
                        f"put {layout} there, or point data.train / valid / test at your copy with --set"
                    )
