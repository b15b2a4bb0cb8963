"""The race chapter's ladder diagrams and step-code key come from the race model's steps."""

from __future__ import annotations

from anonlib.race.ladder import (
    PATTERNS,
    Pattern,
    barriers_between,
    communications,
    ladder_figure,
    step_legend,
)
from anonlib.race.variants import VARIANTS

SB, MP = PATTERNS


def _ids(p: Pattern) -> list[tuple[str, str]]:
    return [(w.step.id, r.step.id) for w, r in communications(p)]


def test_the_arrows_pair_each_write_with_the_other_cpus_read_of_it():
    assert _ids(SB) == [("A1", "B4"), ("B3", "A2")]
    assert _ids(MP) == [("A3", "B5"), ("A4", "B4")]


def test_the_barriers_are_the_variants():
    a, b = SB.rungs()
    assert barriers_between(a[0].step, a[1].step) == ("smp_mb",)
    assert barriers_between(b[0].step, b[1].step) == ("smp_mb__after_atomic",)
    a, b = MP.rungs()
    assert barriers_between(a[0].step, a[1].step) == ("smp_mb__after_atomic",)
    assert barriers_between(b[0].step, b[1].step) == ("smp_rmb",)


def test_a_variant_without_the_barrier_draws_none():
    broken = Pattern("no mb", "swapout-no-share-mb", ("A1", "A2"), ("B3", "B4"), "-")
    a, _b = broken.rungs()
    assert barriers_between(a[0].step, a[1].step) == ()
    fig = ladder_figure([broken])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "(no barrier)" in texts
    gids = {p.get_gid() for ax in fig.axes for p in ax.patches}
    assert "rung:swapout-no-share-mb:A1" in gids


def test_the_figure_has_every_rung_and_arrow():
    fig = ladder_figure()
    gids = {p.get_gid() for ax in fig.axes for p in ax.patches}
    for p in PATTERNS:
        for sid in p.a + p.b:
            assert f"rung:{p.variant}:{sid}" in gids
        for w, r in _ids(p):
            assert f"comm:{w}->{r}" in gids


def test_the_legend_names_every_step_of_the_variants_once_per_line():
    text = step_legend(["swapout", "ksm-aba"])
    codes = [line.split()[0] for line in text.splitlines() if line[:1].isalnum()]
    for name in ("swapout", "ksm-aba"):
        for prog in VARIANTS[name].programs():
            for sid, step in prog.steps.items():
                assert sid in codes
                assert step.func in text
    assert "A1@mem" in text and "B5@early" in text and "B4x" in text
    assert codes.count("A1") == 2  # try_to_unmap_one and write_protect_page
    assert step_legend(["swapout"]) == step_legend(["swapout"])
