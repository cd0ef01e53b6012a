"""A study's settled latency scale: one slow phase at the first measurement no longer moves a study."""

import optuna
import pytest
from optuna.trial import TrialState

from archsearch.analysis.trial_sets import TrialSet
from archsearch.latency.scale import rescaled_ms, settled_scale
from archsearch.search.latency_scale import settled_trials, study_scales

DEVICE = "cpu-abc"


def correction(image_ratio, text_ratio, anchor_image_ms, anchor_text_ms, quiet=(77.8, 37.7), anchor="mobileclip_s0",
               device=DEVICE) -> dict:
    """A trial's `latency_correction` as the trial runner records it (the fields the scale reads)."""
    return {"anchor": anchor, "device": device, "anchor_quiet_ms": {"image_ms": quiet[0], "text_ms": quiet[1]},
            "image": {"ratio": image_ratio, "anchor_ms": anchor_image_ms},
            "text": {"ratio": text_ratio, "anchor_ms": anchor_text_ms}}


def trial(number, corr, top1=30.0, state=TrialState.COMPLETE):
    """A completed trial whose figures are its ratios times the quiet figure, as recorded in a sweep."""
    attrs = {"trained": True, "zeroshot_top1": top1, "constraints": [], "latency_cv": 0.01}
    if corr is not None:
        q = corr["anchor_quiet_ms"]
        image, text = corr["image"]["ratio"] * q["image_ms"], corr["text"]["ratio"] * q["text_ms"]
        attrs |= {"image_ms": image, "text_ms": text, "latency_ms": image + text, "latency_correction": corr}
    else:
        attrs |= {"image_ms": 5.0, "text_ms": 2.0, "latency_ms": 7.0}
    t = optuna.trial.create_trial(state=state, values=[top1, attrs["latency_ms"]], user_attrs=attrs)
    t.number = number
    return t


def test_the_scale_is_the_lowest_anchor_median_of_every_window_and_the_quiet_figure():
    scale = settled_scale([correction(1.0, 1.0, 80.0, 36.0), correction(2.0, 1.5, 74.1, 39.0),
                           correction(3.0, 1.1, 78.0, 38.0)])
    assert (scale.image_ms, scale.text_ms) == (74.1, 36.0)  # per tower, from different windows
    assert scale.windows == 3 and scale.quiet_ms == {"image_ms": 77.8, "text_ms": 37.7}
    # a quiet figure below every window's anchor bounds the scale: a slow phase only adds time
    assert settled_scale([correction(1.0, 1.0, 90.0, 45.0)]).image_ms == 77.8
    assert rescaled_ms(correction(2.0, 0.5, 0, 0), scale) == pytest.approx(
        {"image_ms": 148.2, "text_ms": 18.0, "total_ms": 166.2})


def test_measurements_against_different_anchors_share_no_scale():
    with pytest.raises(ValueError, match="different anchors"):
        settled_scale([correction(1.0, 1.0, 80, 36), correction(1.0, 1.0, 80, 36, anchor="vitamin_s")])
    with pytest.raises(ValueError, match="no drift-corrected"):
        settled_scale([])


def test_two_studies_whose_first_anchor_figure_differs_by_a_slow_phase_agree_once_settled():
    """The failure `sweep_latency.md` recorded at 69da9ec: the same ratios, one study's quiet
    figure taken in a slow phase (130.8 against 116.6 ms total), its windows mostly fast."""
    ratios = [(1.0, 1.0), (1.9, 2.1), (2.6, 2.9), (4.3, 4.6)]
    slow_quiet, fast_quiet = (88.2, 42.6), (78.6, 38.0)
    windows_a = [(79.1, 38.2), (93.0, 45.0), (78.7, 38.4), (80.2, 38.1)]  # one slow window of four
    windows_b = [(78.9, 38.3), (79.4, 38.0), (81.0, 39.2), (78.8, 38.6)]
    a = [trial(i, correction(*r, *w, quiet=slow_quiet)) for i, (r, w) in enumerate(zip(ratios, windows_a))]
    b = [trial(i, correction(*r, *w, quiet=fast_quiet)) for i, (r, w) in enumerate(zip(ratios, windows_b))]
    recorded = [x.user_attrs["latency_ms"] / y.user_attrs["latency_ms"] - 1 for x, y in zip(a, b)]
    assert min(recorded) > 0.10  # 12% apart as recorded
    settled = [x.user_attrs["latency_ms"] / y.user_attrs["latency_ms"] - 1
               for x, y in zip(settled_trials(a), settled_trials(b))]
    assert max(abs(d) for d in settled) < 0.01


def test_settled_trials_rescale_values_and_attributes_and_keep_what_the_sampler_saw():
    trials = [trial(0, correction(1.0, 1.0, 75.0, 36.0)), trial(1, correction(2.0, 3.0, 79.0, 37.0)),
              trial(2, None), trial(3, correction(1.5, 1.5, 70.0, 30.0, device="other-cpu"))]
    settled = settled_trials(trials)
    assert settled[2] is trials[2]  # no ratios recorded: as it was
    one = settled[1]
    assert one.user_attrs["image_ms"] == pytest.approx(2.0 * 75.0)
    assert one.user_attrs["text_ms"] == pytest.approx(3.0 * 36.0)
    assert one.user_attrs["latency_ms"] == pytest.approx(150.0 + 108.0) == one.values[1]
    assert one.values[0] == 30.0 and one.number == 1 and one.state == TrialState.COMPLETE
    assert one.user_attrs["latency_ms_recorded"] == trials[1].user_attrs["latency_ms"]
    assert one.user_attrs["latency_scale"]["windows"] == 2
    # another device's trial settles on its own windows only
    assert settled[3].user_attrs["latency_ms"] == pytest.approx(1.5 * 70.0 + 1.5 * 30.0)
    assert set(study_scales(trials)) == {(DEVICE, "mobileclip_s0"), ("other-cpu", "mobileclip_s0")}
    assert trials[1].user_attrs["latency_ms"] == pytest.approx(2.0 * 77.8 + 3.0 * 37.7)  # the input is untouched


def test_a_trial_set_draws_its_front_on_the_settled_scale():
    trials = [trial(0, correction(1.0, 1.0, 70.0, 30.0), top1=30.0), trial(1, correction(2.0, 2.0, 76.0, 37.0),
                                                                      top1=40.0)]
    sets = TrialSet.of("s", trials)
    assert [p.latency_ms for p in sets.front] == pytest.approx([100.0, 200.0])
    assert sets.scales[(DEVICE, "mobileclip_s0")].image_ms == 70.0
