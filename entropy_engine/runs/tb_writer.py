"""A minimal TensorBoard writer (scalars and text) on top of the ``tensorboard`` package.

It writes the same event records as ``torch.utils.tensorboard.SummaryWriter`` but does not need
torch to be imported (a few seconds on a laptop), which keeps the monitor light.
"""
from __future__ import annotations

import time
from pathlib import Path

MISSING = (
    "TensorBoard is not installed, so no event files are written (metrics.csv still is); "
    "install it with: pip install entropy-engine[tensorboard]"
)


class ScalarWriter:
    """Writes TensorBoard event files into ``log_dir``.

    ``purge_step`` (after a resume from a checkpoint) records a session restart at that step, so
    TensorBoard hides the events a crashed run wrote after its last checkpoint. Raises
    ImportError with an install hint when TensorBoard is not installed.
    """

    def __init__(self, log_dir: str | Path, purge_step: int | None = None, flush_secs: int = 30):
        try:
            from tensorboard.compat.proto import event_pb2, summary_pb2
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError as exc:
            raise ImportError(MISSING) from exc
        self._event_pb2 = event_pb2
        self._summary_pb2 = summary_pb2
        self._writer = EventFileWriter(str(log_dir), flush_secs=flush_secs)
        if purge_step is not None:
            Event = event_pb2.Event
            self._writer.add_event(Event(step=purge_step, file_version="brain.Event:2"))
            self._writer.add_event(
                Event(step=purge_step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))
            )

    @property
    def log_dir(self) -> str:
        return self._writer.get_logdir()

    def _add(self, step: int, values: list) -> None:
        summary = self._summary_pb2.Summary(value=values)
        self._writer.add_event(self._event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))

    def add_scalars(self, step: int, scalars: dict[str, float]) -> None:
        """One event holding every scalar of a training iteration."""
        Value = self._summary_pb2.Summary.Value
        self._add(step, [Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()])

    def add_text(self, tag: str, text: str, step: int = 0) -> None:
        """A text summary (markdown), shown in TensorBoard's Text tab."""
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        pb = self._summary_pb2
        metadata = pb.SummaryMetadata(
            plugin_data=pb.SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        self._add(step, [pb.Summary.Value(tag=f"{tag}/text_summary", metadata=metadata, tensor=tensor)])

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()
