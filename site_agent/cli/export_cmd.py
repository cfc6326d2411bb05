"""``site-agent export RUN_DIR``: write the signed, anonymized bundle of a trained run."""

from __future__ import annotations

from pathlib import Path

import typer

from gsco_common.cli import JsonFlag, console, err_console, handle_errors, print_json


@handle_errors
def export(
    run_dir: Path = typer.Argument(..., help="A run folder (SITE_DIR/runs/<run-id>)."),
    resamples: int = typer.Option(
        200, "--bootstrap", min=0, help="Bootstrap resamples for the card's 95% CIs."
    ),
    calibrated_mia: bool = typer.Option(
        False,
        "--calibrated-mia",
        help="Add the calibrated membership-inference attack (loss relative to a held-out reference).",
    ),
    json_output: JsonFlag = False,
) -> None:
    """Export ONNX, check parity and PHI, write the card and sign: RUN_DIR/bundle/.

    Nothing is written when a check fails; a PHI hit names the field, never the value.
    """
    from site_agent.export.bundle import export_bundle

    with err_console.status("exporting") as status:
        report = export_bundle(
            run_dir,
            resamples=resamples,
            calibrated_mia=calibrated_mia,
            progress=lambda step: status.update(step),
        )
    if json_output:
        print_json(report.to_dict())
        return
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in report.metrics.items() if v is not None)
    console.print(f"bundle written: {report.path}", highlight=False, soft_wrap=True)
    console.print(f"  digest {report.bundle_digest}; model uid {report.model_uid}", highlight=False)
    console.print(
        f"  parity: max |Δ logits| {report.max_abs_diff:.2g} on {report.parity_images} validation images",
        highlight=False,
    )
    console.print(f"  held-out ({report.split}): {metrics}", highlight=False)
    mia = report.membership_inference_auc
    console.print(f"  membership-inference AUC: {'n/a' if mia is None else f'{mia:.3f}'}", highlight=False)
    console.print("next: `site-agent publish RUN_DIR`", highlight=False)
