// An entry's outcome told on the log's own thread instead of through a Task continuation on the thread pool: for the
// volume writer's requests, whose reaction (count down, answer the client) is short and never blocks. A lone entry
// is told there and then; the entries of a larger group on the pool. Each entry is told exactly once.
namespace CloudFs.BlockDevice;

public interface IAppendCompletion
{
    /// <summary>The entry is in the log (durable too if it asked) and applied to its volume.</summary>
    void Completed(AppendResult result);

    /// <summary>The entry was refused, or failed in the log; nothing of it is applied.</summary>
    void Failed(Exception error);
}
