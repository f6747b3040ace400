"""Plugin registries: one per plugin kind (routers, partitioners, reranker formats, retrievers).

A :class:`Registry` maps a name to a lazily imported factory, a one-line description and the
factory's declared parameters (:class:`Param`: name, type, default, help — the way ir_measures
declares its measures' parameters). Everything that used to name plugins by hand — route-spec
parsing, option checking, CLI choices and ``--help`` text — asks the registry, so a plugin is
named in ONE place. Three ways to register:

* the package's own plugins, by ``"module:attr"`` strings, so that nothing heavy (torch, jnius,
  faiss) is imported until a plugin is built;
* a user's plugin in one line: ``registry.register("name", factory)``, or as a decorator;
* an installed package, through the registry's entry-point group (e.g. ``selectsearch.routers``
  in its ``pyproject.toml``: ``[project.entry-points."selectsearch.routers"] largest =
  "mypkg.routers:LargestFirst"``), read on first need.

A factory is called with the *context* names it asks for by parameter name (for routers: ``spec``,
``index``, ``qrels``, ``seed``) and the user's options, converted from CLI strings to the declared
types. Options nobody declared are refused, naming the valid ones. Without explicit ``params``
the parameters are read from the factory's signature (annotations give the type, defaults the
default, a Google-style ``Args:`` docstring section the help).

Example:
    >>> colours = Registry("colour", group=None, context=("seed",))
    >>> @colours.register("grey", description="shades of grey", params=[Param("level", int, 50, "0-100")])
    ... def grey(*, seed: int = 0, level: int = 50) -> str:
    ...     return f"grey{level}/{seed}"
    >>> colours.build("grey", {"level": "70"}, {"seed": 1, "unused": 2})
    'grey70/1'
    >>> colours.check("grey", {"levle": 3})
    Traceback (most recent call last):
    ...
    selectsearch.errors.SelectSearchError: unknown options for 'grey': levle; grey takes level
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from selectsearch.errors import SelectSearchError

__all__ = ["REQUIRED", "Entry", "Param", "Registry", "call_with_context", "flag", "load_target"]


class _Required:
    """Marker default of a parameter that must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


#: the default of a parameter without one
REQUIRED: Any = _Required()

_FALSE = ("0", "false", "no", "off", "")


def flag(value: Any) -> bool:
    """A yes/no option: the strings ``0``, ``false``, ``no``, ``off`` and ``""`` are False.

    Example:
        >>> [flag(v) for v in ("1", "off", "No", 0, True)]
        [True, False, False, False, True]
    """
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


#: how a type is spelled in help and in conversion errors
_TYPE_TEXT = {int: "an integer", float: "a number", bool: "0/1 (or true/false)", str: "text"}


@dataclass(frozen=True)
class Param:
    """A declared parameter of a plugin.

    Attributes:
        name: the option's name (``KEY`` of ``--router-option KEY=VALUE``).
        dtype: ``int``, ``float``, ``bool`` or ``str``; a string value (from the command line) is
            converted to it, a value of another type (from TOML or Python) is passed as given.
        default: what the factory uses when the option is not given (shown in help; the
            factory's own default applies). :data:`REQUIRED` when it must be given.
        help: one line for ``--help``.
    """

    name: str
    dtype: type = str
    default: Any = None
    help: str = ""

    def convert(self, value: Any) -> Any:
        """``value`` as :attr:`dtype` when it is a string; :class:`ValueError` if it does not parse."""
        if not isinstance(value, str) or self.dtype is str:
            return value
        if self.dtype is bool:
            return flag(value)
        return self.dtype(value.strip())

    def describe(self) -> str:
        """``name (int, default 50): help``."""
        default = "required" if self.default is REQUIRED else (
            f"default {self.default}" if self.default is not None else "optional")
        text = f"{self.name} ({self.dtype.__name__}, {default})"
        return f"{text}: {self.help}" if self.help else text


class Entry:
    """One registered plugin: its name, factory (imported on first use), description and
    parameters (read from the factory on first use when not declared), plus ``meta``: facts a
    plugin kind needs (e.g. whether a router takes a budget)."""

    def __init__(self, name: str, target: Any, *, description: str | None = None,
                 params: Iterable[Param] | None = None, meta: Mapping[str, Any] | None = None,
                 origin: str = "") -> None:
        self.name = name
        self._target = target
        self._description = description
        self._params = tuple(params) if params is not None else None
        self.meta = dict(meta or {})
        self.origin = origin

    def load(self) -> Any:
        """The factory (a class, function or ready object); a ``"module:attr"`` target is
        imported now."""
        if isinstance(self._target, str):
            self._target = load_target(self._target)
        return self._target

    @property
    def description(self) -> str:
        """One line (the factory's docstring's first line unless declared)."""
        if self._description is None:
            doc = inspect.getdoc(self.load()) or ""
            self._description = doc.strip().splitlines()[0] if doc.strip() else ""
        return self._description

    def params(self, context: Iterable[str] = ()) -> tuple[Param, ...]:
        """The declared parameters (those of the factory's signature that are not ``context``
        names, unless declared at registration)."""
        if self._params is None:
            self._params = _signature_params(self.load(), set(context))
        return self._params

    def param_names(self, context: Iterable[str] = ()) -> tuple[str, ...]:
        """Names of :meth:`params`."""
        return tuple(p.name for p in self.params(context))


def load_target(target: Any) -> Any:
    """The object a ``"module:attr"`` (or ``"module:attr.sub"``) string names; any other
    ``target`` is returned as it is."""
    if not isinstance(target, str):
        return target
    module_name, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, attr.split(".")):
        obj = getattr(obj, part)
    return obj


class Registry(Mapping[str, Entry]):
    """Name -> :class:`Entry` for one plugin kind (see the module docs).

    Args:
        kind: what the plugins are, for messages (``"router"``).
        group: the Python entry-point group installed packages add plugins through (``None``:
            none is read).
        context: names a factory may ask for by parameter name besides its options
            (``("spec", "index", "qrels", "seed")`` for routers); they are never options.
        error: the exception class of refusals (a :class:`SelectSearchError` subclass).
        name_pattern: what a name must look like (e.g. no ``@`` in a router name).
    """

    def __init__(self, kind: str, *, group: str | None, context: Iterable[str] = (),
                 error: type[SelectSearchError] = SelectSearchError,
                 name_pattern: str = r"[a-z][a-z0-9_-]*") -> None:
        self.kind = kind
        self.group = group
        self.context = tuple(context)
        self.error = error
        self._name = re.compile(name_pattern)
        self._entries: dict[str, Entry] = {}
        self._entry_points_read = group is None

    # ---- registering -------------------------------------------------------------------------------------------

    def register(self, name: str, target: Any = None, *, description: str | None = None,
                 params: Iterable[Param] | None = None, replace: bool = False, **meta: Any) -> Any:
        """Register ``target`` (a factory, a class, a ready object or a ``"module:attr"`` string)
        as ``name``; without ``target``, a decorator that registers what it decorates.

        Raises:
            SelectSearchError: a malformed name, or a name registered before to something else
                (pass ``replace=True`` to replace it).
        """
        if target is None:
            def decorate(obj: Any) -> Any:
                self.register(name, obj, description=description, params=params, replace=replace, **meta)
                return obj

            return decorate
        if not self._name.fullmatch(name):
            raise self.error(f"{self.kind} name {name!r} must match {self._name.pattern}")
        old = self._entries.get(name)
        if old is not None and not replace and old._target is not target and old.origin != "entry point":
            raise self.error(f"{self.kind} {name!r} is registered already ({old.origin}); "
                             "pass replace=True to replace it, or choose another name")
        origin = target if isinstance(target, str) else f"module {getattr(target, '__module__', '?')}"
        self._entries[name] = Entry(name, target, description=description, params=params, meta=meta,
                                    origin=origin)
        return target

    def unregister(self, name: str) -> None:
        """Forget ``name`` (no error when it is not registered)."""
        self._entries.pop(name, None)

    def _read_entry_points(self) -> None:
        if self._entry_points_read:
            return
        self._entry_points_read = True
        from importlib.metadata import entry_points

        assert self.group is not None
        for ep in entry_points(group=self.group):
            if ep.name not in self._entries and self._name.fullmatch(ep.name):
                self._entries[ep.name] = Entry(ep.name, ep.value, origin="entry point")

    # ---- Mapping -------------------------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Entry:
        if name not in self._entries:
            self._read_entry_points()
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        if name in self._entries:
            return True
        self._read_entry_points()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._read_entry_points()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._read_entry_points()
        return len(self._entries)

    # ---- using -----------------------------------------------------------------------------------------------------

    def entry(self, name: str) -> Entry:
        """The entry of ``name``.

        Raises:
            SelectSearchError: (of the registry's ``error`` class) an unknown name, naming the known ones.
        """
        if name not in self:
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self))}")
        return self[name]

    def takes(self, name: str) -> str:
        """``"redde takes csi_rate, depth"`` (or ``"... takes no options"``), for messages."""
        known = self.entry(name).param_names(self.context)
        return f"{name} takes {', '.join(known) if known else 'no options'}"

    def check(self, name: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` converted to the declared types of ``name``'s parameters.

        Raises:
            SelectSearchError: (of the registry's ``error`` class) an option ``name`` does not
                declare, naming the valid ones, or a value that is not of the declared type.
        """
        entry = self.entry(name)
        declared = {p.name: p for p in entry.params(self.context)}
        unknown = sorted(k for k in options if k not in declared)
        if unknown:
            raise self.error(f"unknown options for {name!r}: {', '.join(unknown)}; {self.takes(name)}")
        out: dict[str, Any] = {}
        for key, value in options.items():
            param = declared[key]
            try:
                out[key] = param.convert(value)
            except ValueError:
                numeric = [p.name for p in declared.values() if p.dtype in (int, float)]
                raise self.error(f"{name!r} options {', '.join(numeric)} must be numbers: {key}={value!r} is not "
                                 f"{_TYPE_TEXT[param.dtype]}") from None
        return out

    def build(self, name: str, options: Mapping[str, Any] | None = None,
              context: Mapping[str, Any] | None = None, *, unchecked: Mapping[str, Any] | None = None) -> Any:
        """Check ``options`` (:meth:`check`) and call ``name``'s factory with them and with the
        ``context`` values whose names it takes as parameters. A registered object that is not
        callable (a ready-made plugin) is returned as it is. ``unchecked`` options go to the
        factory as they are: the plugin checks them itself (``hybrid``'s options of the routers it
        fuses).

        Raises:
            SelectSearchError: see :meth:`check`; a required option missing.
        """
        entry = self.entry(name)
        kwargs = self.check(name, dict(options or {}))
        missing = [p.name for p in entry.params(self.context) if p.default is REQUIRED and p.name not in kwargs]
        if missing:
            raise self.error(f"{self.kind} {name!r} needs the option{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(missing)}")
        return call_with_context(entry.load(), dict(context or {}), {**kwargs, **(unchecked or {})})

    def help_text(self, names: Iterable[str] | None = None, *, indent: int = 2, width: int = 12) -> str:
        """One block per plugin: name and description, then one line per parameter."""
        lines = []
        names = sorted(self) if names is None else list(names)
        width = max([width - 1, *map(len, names)]) + 1
        for name in names:
            entry = self.entry(name)
            lines.append(f"{' ' * indent}{name:<{width}} {entry.description}")
            lines += [f"{' ' * (indent + width + 3)}{p.describe()}" for p in entry.params(self.context)]
        return "\n".join(lines)


def call_with_context(factory: Any, context: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    """``factory(**options, **{context values it names as parameters})``; a non-callable object
    (a ready-made plugin) is returned as it is."""
    if not callable(factory):
        return factory
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin without a signature: options only
        return factory(**options)
    named = {n for n, p in signature.parameters.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return factory(**{k: v for k, v in context.items() if k in named}, **options)


def _signature_params(factory: Any, context: set[str]) -> tuple[Param, ...]:
    """The keyword parameters of ``factory`` that are not ``context`` names, as :class:`Param`."""
    if not callable(factory):
        return ()
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return ()
    helps = _doc_args(inspect.getdoc(factory) or "")
    out = []
    for name, p in signature.parameters.items():
        if name in context or name.startswith("_") or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        default = REQUIRED if p.default is p.empty else p.default
        out.append(Param(name, _annotation_type(p.annotation, default), default, helps.get(name, "")))
    return tuple(out)


def _annotation_type(annotation: Any, default: Any) -> type:
    """``int``/``float``/``bool``/``str`` from an annotation (a string under postponed
    evaluation, e.g. ``"int | None"``) or, without one, from the default."""
    if annotation is inspect.Parameter.empty:
        return type(default) if isinstance(default, (bool, int, float)) else str
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    tokens = set(re.findall(r"[A-Za-z_]+", text))
    for candidate in (bool, int, float):
        if candidate.__name__ in tokens:
            return candidate
    return str


def _doc_args(doc: str) -> dict[str, str]:
    """``{name: first line}`` of a Google-style docstring's ``Args:`` section."""
    out: dict[str, str] = {}
    inside = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Attributes:"):
            inside = True
            continue
        if inside and stripped and not line.startswith(" "):
            inside = False
        match = re.match(r"^\s{2,8}(\w+)(?: \([^)]*\))?: (.*)$", line) if inside else None
        if match:
            out.setdefault(match.group(1), match.group(2).strip())
    return out

