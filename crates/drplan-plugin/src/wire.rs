//! Lines on the wire: one JSON object per line, written by one task.

use drplan_protocol::rpc::Message;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedWrite, LinesCodec};

/// Queue `message` for the writer, as one line. One that cannot be written is dropped: nobody
/// waits on it (a notification), or the other side is gone.
pub fn queue(out: &mpsc::UnboundedSender<String>, message: &Message) {
    if let Ok(line) = serde_json::to_string(message) {
        let _ = out.send(line);
    }
}

/// Write lines as they come, flushing once for everything queued meanwhile: with many calls
/// in flight, one write carries many messages.
pub async fn write_lines<W: tokio::io::AsyncWrite + Unpin>(
    mut sink: FramedWrite<W, LinesCodec>,
    mut lines: mpsc::UnboundedReceiver<String>,
) {
    while let Some(line) = lines.recv().await {
        if sink.feed(line).await.is_err() {
            return;
        }
        while let Ok(line) = lines.try_recv() {
            if sink.feed(line).await.is_err() {
                return;
            }
        }
        if SinkExt::<String>::flush(&mut sink).await.is_err() {
            return;
        }
    }
}
