"""Pure helpers of the data gate and of `anomaly-pipeline drift`.

Everything here works on TFDV protos (statistics, schema, anomalies) and numpy;
no TFX, no Beam, no files. `compare()` is the one place drift is measured:
`tfdv.validate_statistics(current, schema with drift comparators,
previous_statistics=baseline)` on copies of the two statistics prepared so that
TFDV's comparators measure the data, not artefacts of how the statistics were
bucketed:

* **Numeric features: Jensen-Shannon divergence (bits, 0..1) on the
  reference's deciles.** TFDV's JS re-buckets the two equal-width histograms
  onto the union of their edges assuming values are uniform inside a bucket.
  On features with a spike (most rows one value, a few outliers: 5 of the 21
  cardio features) the outliers set the bucket edges, so two random halves of
  the same file measured JS 0.2 to 1.0. Its quantile histograms handle
  spikes but split tied values between buckets differently on each sample
  (0.1 to 0.19 on discrete features). So both distributions are put on the
  same bins before TFDV sees them: the distinct decile boundaries of the
  baseline plus one bin below and one above its range (values outside the
  reference's range land there), each side's mass per bin read from its own
  quantile histogram (its CDF, linear between quantiles, a tie split half and
  half at a boundary). Same bins on both sides: TFDV computes the plain JS.
* **The label: L-infinity distance** between the class frequencies. StatisticsGen
  reports a 0/1 integer label as numbers; its class counts are exact from the
  mean (share of 1s), and are given to TFDV as the label's value counts.

The defaults 0.1 / 0.1 let a resample pass and stop a shift of ~0.7 sd in one
feature (docs/data-gate.md has the measurements, bench/drift_thresholds.py
reproduces them).
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

JS = "jensen_shannon_divergence"
LINF = "l_infinity"
_MEASURE_NAMES = {
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: JS,
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: LINF,
}
_READABLE = {JS: "Jensen-Shannon divergence", LINF: "L-infinity distance"}
# Anomaly reasons that are drift (reported from drift_skew_info instead).
_DRIFT_REASONS = frozenset({
    anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH,
})
_H = statistics_pb2.Histogram


# --------------------------------------------------------------------------- statistics


def feature_name(f: statistics_pb2.FeatureNameStatistics) -> str:
    return ".".join(f.path.step) if f.path.step else f.name


def features_by_name(ds: statistics_pb2.DatasetFeatureStatistics
                     ) -> Dict[str, statistics_pb2.FeatureNameStatistics]:
    return {feature_name(f): f for f in ds.features}


def single_dataset(stats: statistics_pb2.DatasetFeatureStatisticsList, name: Optional[str] = None
                   ) -> statistics_pb2.DatasetFeatureStatisticsList:
    """A list holding one dataset of `stats` (by name, else the only/first one)."""
    if not stats.datasets:
        raise ValueError("statistics hold no dataset")
    chosen = stats.datasets[0]
    if name is not None:
        for ds in stats.datasets:
            if ds.name == name:
                chosen = ds
                break
    out = statistics_pb2.DatasetFeatureStatisticsList()
    out.datasets.add().CopyFrom(chosen)
    return out


def _quantile_knots(num: statistics_pb2.NumericStatistics
                    ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(x, F(x)) knots of the CDF from the quantile histogram, or None."""
    hist = next((h for h in num.histograms if h.type == _H.QUANTILES), None)
    if hist is None or not hist.buckets:
        return None
    xs = [hist.buckets[0].low_value]
    cum = [0.0]
    total = 0.0
    for b in hist.buckets:
        total += b.sample_count
        xs.append(b.high_value)
        cum.append(total)
    if total <= 0 or not all(math.isfinite(x) for x in xs):
        return None
    return np.asarray(xs, float), np.asarray(cum, float) / total


def cdf_at(knots: Tuple[np.ndarray, np.ndarray], x: float) -> float:
    """F(x), linear between knots; at a jump (tied values) the jump's midpoint."""
    xs, ps = knots
    lo = int(np.searchsorted(xs, x, side="left"))
    hi = int(np.searchsorted(xs, x, side="right"))
    if hi > lo:  # x is a knot (several when values are tied at x)
        return 0.5 * (ps[lo] + ps[hi - 1])
    if lo == 0:
        return 0.0
    if lo == len(xs):
        return 1.0
    x0, x1, p0, p1 = xs[lo - 1], xs[lo], ps[lo - 1], ps[lo]
    return float(p0 + (p1 - p0) * (x - x0) / (x1 - x0))


def common_bins(baseline: Tuple[np.ndarray, np.ndarray], current: Tuple[np.ndarray, np.ndarray]
                ) -> np.ndarray:
    """Bin edges: the baseline's distinct quantile boundaries, plus one bin
    below and one above them reaching past both sides' ranges."""
    inner = np.unique(baseline[0])
    lo = min(inner[0], current[0][0])
    hi = max(inner[-1], current[0][-1])
    pad = max(hi - lo, abs(hi), abs(lo), 1.0) * 1e-3
    return np.concatenate([[lo - pad], inner, [hi + pad]])


def binned_masses(knots: Tuple[np.ndarray, np.ndarray], edges: np.ndarray) -> np.ndarray:
    """Share of values in each bin [edges[i], edges[i+1]] (sums to 1)."""
    cdf = np.array([cdf_at(knots, e) for e in edges[1:-1]], float)
    cdf = np.maximum.accumulate(np.clip(cdf, 0.0, 1.0))
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _aligned_histogram(edges: np.ndarray, masses: np.ndarray, count: float,
                       num_nan: float) -> statistics_pb2.Histogram:
    h = statistics_pb2.Histogram(type=_H.STANDARD, num_nan=num_nan)
    for i, m in enumerate(masses):
        h.buckets.add(low_value=float(edges[i]), high_value=float(edges[i + 1]),
                      sample_count=float(m * count))
    return h


def _num_nan(num: statistics_pb2.NumericStatistics) -> float:
    return max((h.num_nan for h in num.histograms), default=0)


def _label_as_classes(f: statistics_pb2.FeatureNameStatistics) -> bool:
    """Replaces a 0/1 label's numeric statistics by its class counts."""
    if not f.HasField("num_stats"):
        return False
    num = f.num_stats
    n = float(num.common_stats.num_non_missing)
    if n <= 0 or num.min < 0 or num.max > 1:
        return False
    ones = num.mean * n
    counts = [("0", n - ones), ("1", ones)]
    common = copy.deepcopy(num.common_stats)
    f.ClearField("num_stats")
    s = f.string_stats
    s.common_stats.CopyFrom(common)
    s.unique = sum(1 for _, c in counts if c > 0)
    for value, c in sorted(counts, key=lambda vc: -vc[1]):
        s.top_values.add(value=value, frequency=c)
    for i, (value, c) in enumerate(counts):
        s.rank_histogram.buckets.add(low_rank=i, high_rank=i, label=value, sample_count=c)
    return True


def prepare_for_drift(current: statistics_pb2.DatasetFeatureStatisticsList,
                      baseline: statistics_pb2.DatasetFeatureStatisticsList,
                      label_column: Optional[str] = None,
                      ) -> Tuple[statistics_pb2.DatasetFeatureStatisticsList,
                                 statistics_pb2.DatasetFeatureStatisticsList]:
    """Copies of both (single-dataset) statistics whose numeric histograms sit
    on common bins and whose label has class counts (see module docstring)."""
    cur, base = copy.deepcopy(current), copy.deepcopy(baseline)
    cur_f = features_by_name(cur.datasets[0])
    base_f = features_by_name(base.datasets[0])
    for name, cf in cur_f.items():
        bf = base_f.get(name)
        if bf is None:
            continue
        if name == label_column:
            if _label_as_classes(cf) and not _label_as_classes(bf):
                cf.ClearField("string_stats")  # keep both sides comparable
            elif bf.HasField("num_stats") and not cf.HasField("num_stats"):
                _label_as_classes(bf)
            continue
        if not (cf.HasField("num_stats") and bf.HasField("num_stats")):
            continue
        ck, bk = _quantile_knots(cf.num_stats), _quantile_knots(bf.num_stats)
        if ck is None or bk is None:
            continue
        edges = common_bins(bk, ck)
        for f, knots in ((cf, ck), (bf, bk)):
            n = float(f.num_stats.common_stats.num_non_missing) or 1.0
            h = _aligned_histogram(edges, binned_masses(knots, edges), n,
                                   _num_nan(f.num_stats))
            del f.num_stats.histograms[:]
            f.num_stats.histograms.add().CopyFrom(h)
    return cur, base


# --------------------------------------------------------------------------- schema


def relax_schema(schema: schema_pb2.Schema, label_column: Optional[str] = None,
                 passthrough: Iterable[str] = (), max_missing_share: float = 0.0
                 ) -> schema_pb2.Schema:
    """The schema later spans are validated against, from an inferred one.

    Kept: every feature and its type. A feature present in every row of the
    reference may be missing in at most `max_missing_share` of a new span's
    rows (0: never, as when rows with empty cells are quarantined); one that
    was sometimes missing is not limited. Passthrough columns (ids, keys,
    timestamps) keep only their type: no domain, no presence limit. Changed:
    the label gets `int_domain {min: 0 max: 1}` instead of an inferred string
    domain (TFDV's own validator rejects a string domain on an INT feature);
    `min_count` and value-count bounds that a smaller span would fail for no
    reason go.
    """
    out = copy.deepcopy(schema)
    skip = set(passthrough)
    for f in out.feature:
        if f.presence.HasField("min_count"):
            f.presence.min_count = min(f.presence.min_count, 1)
        if f.name != label_column and (max_missing_share > 0 or f.name in skip) \
                and f.HasField("shape"):
            f.ClearField("shape")  # a shaped feature must be in every row
            f.value_count.min, f.value_count.max = 1, 1
        if f.name in skip:
            f.presence.ClearField("min_fraction")
            f.ClearField("domain_info")
        elif f.name != label_column and max_missing_share > 0 and \
                f.presence.min_fraction >= 1.0:
            f.presence.min_fraction = 1.0 - max_missing_share
        if f.HasField("value_count") and not f.HasField("shape"):
            f.value_count.min = min(f.value_count.min, 1) if f.value_count.HasField("min") else 1
            f.value_count.max = max(f.value_count.max, 1) if f.value_count.HasField("max") else 1
        if label_column is not None and f.name == label_column:
            f.ClearField("domain_info")  # an inferred string domain, if any
            f.type = schema_pb2.INT
            f.int_domain.min = 0
            f.int_domain.max = 1
    if label_column is not None or skip:
        used = {f.domain for f in out.feature if f.HasField("domain")}
        keep = [d for d in out.string_domain if d.name in used]
        del out.string_domain[:]
        out.string_domain.extend(keep)
    return out


def with_drift_comparators(schema: schema_pb2.Schema, label_column: Optional[str],
                           js_threshold: float, linf_threshold: float,
                           only: Optional[Iterable[str]] = None) -> schema_pb2.Schema:
    """A copy of `schema` with a JS comparator on every numeric feature and an
    L-infinity comparator on the label and on string features (of `only`, when
    given: a feature new or gone is a schema matter, not drift)."""
    out = copy.deepcopy(schema)
    keep = None if only is None else set(only)
    for f in out.feature:
        f.ClearField("drift_comparator")
        if keep is not None and f.name not in keep:
            continue
        if f.name == label_column or f.type == schema_pb2.BYTES:
            f.drift_comparator.infinity_norm.threshold = linf_threshold
        elif f.type in (schema_pb2.INT, schema_pb2.FLOAT):
            f.drift_comparator.jensen_shannon_divergence.threshold = js_threshold
    return out


# --------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Finding:
    """One reason to reject data: a drifted feature or a schema anomaly."""

    feature: str
    kind: str                     # "drift" or "anomaly"
    text: str                     # readable, e.g. "Jensen-Shannon divergence 0.31 > 0.10"
    measure: Optional[str] = None   # JS / LINF for drift
    value: Optional[float] = None
    threshold: Optional[float] = None
    split: Optional[str] = None

    def to_dict(self) -> Dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    def __str__(self) -> str:
        where = f" ({self.split} split)" if self.split else ""
        return f"feature {self.feature}: {self.text}{where}"


def drift_measurements(anomalies: anomalies_pb2.Anomalies) -> List[Finding]:
    """Every drift measurement TFDV made, drifted or not, largest first."""
    out = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for m in info.drift_measurements:
            measure = _MEASURE_NAMES.get(m.type, str(m.type))
            out.append(Finding(
                feature=name, kind="drift", measure=measure, value=float(m.value),
                threshold=float(m.threshold),
                text=f"{_READABLE.get(measure, measure)} {m.value:.2f} "
                     f"{'>' if m.value > m.threshold else '<='} {m.threshold:.2f}"))
    return sorted(out, key=lambda f: -(f.value or 0.0))


def drifted(measurements: Iterable[Finding]) -> List[Finding]:
    return [m for m in measurements if m.value is not None and m.threshold is not None
            and m.value > m.threshold]


def tolerated(reason: anomalies_pb2.AnomalyInfo.Reason) -> bool:
    """A column whose values were all integers and now are not, or the
    reverse: CsvExampleGen infers INT or FLOAT per span from the values it
    sees, and the model casts every feature to float (the label's 0/1 values
    are checked by the input checks and by its int_domain)."""
    if reason.type != anomalies_pb2.AnomalyInfo.UNEXPECTED_DATA_TYPE:
        return False
    words = set(reason.description.replace(":", " ").split())
    return {"INT", "FLOAT"} <= words and not words & {"STRING", "BYTES", "STRUCT"}


# Reported in the gate's report and the summary, never a reason to stop: a new
# category has its out-of-vocabulary slot in the model.
REPORTED_ONLY = frozenset({anomalies_pb2.AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES})


def anomaly_findings(anomalies: anomalies_pb2.Anomalies, split: Optional[str] = None,
                     ignore_drift: bool = True, reported: bool = False,
                     passthrough: Iterable[str] = ()) -> List[Finding]:
    """Schema anomalies (not drift) as findings, one per feature (and one for
    dataset-level anomalies); `tolerated` reasons are left out. With
    `reported`, only the reasons that are reported without stopping a run
    (REPORTED_ONLY, and anything about a `passthrough` column but its absence)."""
    out = []
    skip = set(passthrough)
    for name, info in sorted(anomalies.anomaly_info.items()):
        def report_only(r):
            return r.type in REPORTED_ONLY or (
                name in skip and r.type != anomalies_pb2.AnomalyInfo.SCHEMA_MISSING_COLUMN)
        reasons = [r for r in info.reason
                   if not (ignore_drift and r.type in _DRIFT_REASONS)
                   and not tolerated(r) and report_only(r) == reported]
        if info.reason:
            text = "; ".join(_reason_texts(reasons))
        else:
            text = "" if reported else _clean(info.description or info.short_description)
        if text:
            out.append(Finding(feature=name, kind="anomaly", text=text, split=split))
    if anomalies.HasField("dataset_anomaly_info") and not reported:
        text = "; ".join(_reason_texts(anomalies.dataset_anomaly_info.reason))
        if text:
            out.append(Finding(feature="(dataset)", kind="anomaly", text=text, split=split))
    return out


def _clean(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


_T = anomalies_pb2.AnomalyInfo
_SHORT = {
    _T.SCHEMA_NEW_COLUMN: "new column, not in the reference schema",
    _T.SCHEMA_MISSING_COLUMN: "column missing",
}
_PRESENCE = re.compile(r"minimum fraction = ([0-9.]+), actual = ([0-9.]+)")


def reason_text(reason: anomalies_pb2.AnomalyInfo.Reason) -> str:
    """TFDV's description of an anomaly, shortened for the common ones."""
    if reason.type in _SHORT:
        return _SHORT[reason.type]
    if reason.type == _T.FEATURE_TYPE_LOW_FRACTION_PRESENT:
        m = _PRESENCE.search(reason.description)
        if m:
            expected, actual = float(m.group(1)), float(m.group(2))
            return (f"missing in {100 * (1 - actual):.0f}% of rows (at most "
                    f"{100 * (1 - expected):.0f}% expected)")
    return _clean(reason.description or reason.short_description)


def _reason_texts(reasons) -> List[str]:
    types = {r.type for r in reasons}
    texts = []
    for r in reasons:
        # "has a shape, but it's not always present" says the same as a
        # low presence: keep the one with numbers.
        if r.type == _T.INVALID_FEATURE_SHAPE and _T.FEATURE_TYPE_LOW_FRACTION_PRESENT in types:
            continue
        texts.append(reason_text(r))
    return texts


def compare(current: statistics_pb2.DatasetFeatureStatisticsList,
            baseline: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, label_column: Optional[str],
            js_threshold: float,
            linf_threshold: float,
            skip: Iterable[str] = (),
            ) -> anomalies_pb2.Anomalies:
    """TFDV's drift comparison of two single-dataset statistics (see module doc);
    the `skip` columns (passthrough: ids, timestamps) are not compared.

    Only the drift part of the returned Anomalies is meaningful (schema checks
    run on the prepared copies; validate the raw statistics for those).
    """
    import tensorflow_data_validation as tfdv

    cur, base = prepare_for_drift(current, baseline, label_column)
    common = (set(features_by_name(cur.datasets[0])) & set(features_by_name(base.datasets[0]))
              ) - set(skip)
    return tfdv.validate_statistics(
        cur, with_drift_comparators(schema, label_column, js_threshold, linf_threshold, common),
        previous_statistics=base)


def summary_sentence(findings: Sequence[Finding], limit: int = 8) -> str:
    """'feature f3: Jensen-Shannon divergence 0.31 > 0.10; feature f7: ...'"""
    shown = "; ".join(str(f) for f in findings[:limit])
    if len(findings) > limit:
        shown += f"; and {len(findings) - limit} more"
    return shown
