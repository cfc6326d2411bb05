"""``site-agent backbones``: the stable backbone names ``training.backbones`` takes, and what each needs."""

from __future__ import annotations

from rich.table import Table

from gsco_common.cli import JsonFlag, console, handle_errors, print_json


def _sizes(min_size: int, multiple: int) -> str:
    return f">= {min_size}" + (f", multiples of {multiple}" if multiple > 1 else "")


@handle_errors
def backbones(json_output: JsonFlag = False) -> None:
    """List the stable backbone names, their input sizes and where matching pretrained weights come from.

    Any timm model name is accepted too. Pretrained weights are never downloaded: put
    `<name>.safetensors` (or .pth / .pt) in `training.weights_dir` (docs/site-agent.md).
    """
    from specialist.models import get_spec, list_backbones  # loads torch and timm: only when asked

    specs = [get_spec(name) for name in list_backbones()]
    if json_output:
        print_json(
            [
                {
                    "name": s.name,
                    "min_size": s.min_size,
                    "size_multiple": s.size_multiple,
                    "weights_source": s.source,
                }
                for s in specs
            ]
        )
        return
    table = Table(title="backbones (training.backbones; any timm model name works too)")
    for column in ("name", "input sizes (px)", "pretrained weights come from"):
        table.add_column(column, overflow="fold")
    for s in specs:
        table.add_row(s.name, _sizes(s.min_size, s.size_multiple), s.source or "-")
    console.print(table)
