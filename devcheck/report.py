"""``device_check.md``: the device check's JSON as the tables that go into RESULTS.md."""

from __future__ import annotations


def _f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def markdown(r: dict) -> str:
    m = r["meta"]
    lines = [
        f"# Device check ({'DRY RUN, CPU, tiny sizes' if m['dry_run'] else m['gpu']})",
        "",
        f"{m['date']}, host {m['host']}, {m['cpus']} CPUs, commit {m['git_commit']}, "
        f"wall {_f(m.get('wall_s'), '{:.0f}')} s of a {m['budget_s']:.0f} s budget, "
        f"load average {', '.join(f'{x:.1f}' for x in m['load_average'])}",
        "",
    ]
    test_parts = [(name, r[name]) for name in ("quick_tests", "tests") if name in r]
    if test_parts or "sharded_check" in r:
        lines += [
            "## a. Correctness on the device",
            "",
            "| check | status | passed | failed | skipped | time s |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in test_parts:
            label = "quick " if name == "quick_tests" else ""
            lines.append(
                f"| {label}pytest ({t.get('platform', '?')}): {', '.join(t.get('files', []))} | {t.get('status')} | "
                f"{t.get('passed', '-')} | {t.get('failed', '-')} | {t.get('skipped', '-')} | "
                f"{_f(t.get('duration_s'), '{:.0f}')} |"
            )
        if "sharded_check" in r:
            s = r["sharded_check"]
            lines.append(
                f"| sharded step on {s.get('num_devices', '?')} x {s.get('device_kind', '?')} vs CPU | "
                f"{s.get('status')} | loss {_f(s.get('loss_device'), '{:.6f}')} vs "
                f"{_f(s.get('loss_cpu'), '{:.6f}')} | params max rel diff "
                f"{_f(s.get('params_max_rel_diff'), '{:.1e}')} | | |"
            )
        failures = [f for _, t in test_parts for f in t.get("failures", [])]
        if failures:
            lines += ["", "Failed: " + ", ".join(f"`{f}`" for f in failures[:30])]
        lines.append("")
    if "speed" in r:
        sp = r["speed"]
        lines += [
            "## b. Training step, CIFAR Spiking ResNet-18",
            "",
            f"Peak memory: {sp.get('memory_note', '')}. FLOPs: {sp.get('flops_method', '')}. "
            f"'of peak' = achieved FLOP/s / {sp.get('peak_flops', 0) / 1e12:.0f} TFLOP/s (dense bf16). "
            "'vs best SJ' = fastest SpikingJelly row of the same T, batch and precision class "
            "(fp32 vs fp32; bf16 vs AMP bf16/fp16) / this row.",
            "",
            "| T | batch | framework | LIF kernel | dtype | step ms | images*T/s | peak MB | TFLOP/s | of peak "
            "| vs best SJ | status |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = sp.get("rows", [])
        for row in rows:
            best = _best_sj(rows, row)
            ratio = f"{best / row['step_s']:.2f}x" if best and row.get("status") == "ok" else "-"
            impl = row.get("impl_ran") or row["impl"]
            if row["framework"] == "spikingjelly" and row.get("impl_ran") and row["impl"] != row.get("impl_ran"):
                impl = f"{row['impl']} -> {row['impl_ran']}"
            status = row.get("status", "")
            lines.append(
                f"| {row['T']} | {row['batch']} | {row['framework']} | {impl} | {row['dtype']} | "
                f"{_f(row.get('step_s') and row['step_s'] * 1e3, '{:.1f}')} | "
                f"{_f(row.get('images_T_per_s'), '{:.0f}')} | {_f(row.get('peak_mb'), '{:.0f}')} | "
                f"{_f(row.get('tflops_per_s'), '{:.2f}')} | {_f(row.get('peak_fraction'), '{:.1%}')} | "
                f"{ratio} | {'ok' if status == 'ok' else status[:120]} |"
            )
        lines.append("")
    if "e2e" in r:
        e = r["e2e"]
        lines += [
            "## c. End-to-end run",
            "",
            f"`{e.get('config')}` with {e.get('overrides')}; "
            f"{'fallback: ' + e['fallback_reason'] + '; ' if e.get('fallback_reason') else ''}"
            f"status {e.get('status')}, wall {_f(e.get('wall_s'), '{:.0f}')} s",
            "",
            "| stage | epoch | epoch wall s | train loss | train acc | test acc |",
            "|---|---|---|---|---|---|",
        ]
        for ep in e.get("epochs", []):
            lines.append(
                f"| {ep['stage']} | {ep['epoch']} | {_f(ep.get('epoch_wall_s'), '{:.1f}')} | "
                f"{_f(_num(ep.get('train_loss')), '{:.3f}')} | {_f(_num(ep.get('train_accuracy')), '{:.3f}')} | "
                f"{_f(_num(ep.get('test_accuracy')), '{:.4f}')} |"
            )
        if e.get("summary"):
            s = e["summary"]
            lines += [
                "",
                f"Student: best test accuracy {_f(_num(s.get('best_test_accuracy')), '{:.4f}')}, "
                f"{_f(s.get('train_images_per_s'), '{:.0f}')} training images/s, "
                f"compile {_f(s.get('compile_time_s'), '{:.0f}')} s, "
                f"train s/epoch {_f(e.get('student_train_s_per_epoch'), '{:.1f}')}",
            ]
        lines.append("")
    return "\n".join(lines)


def _num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _best_sj(rows: list[dict], row: dict) -> float | None:
    if row["framework"] != "snnjax":
        return None
    low = row["dtype"] != "float32"
    times = [
        r["step_s"]
        for r in rows
        if r["framework"] == "spikingjelly"
        and r.get("status") == "ok"
        and r["T"] == row["T"]
        and r["batch"] == row["batch"]
        and (r["dtype"] != "float32") == low
    ]
    return min(times) if times else None
