using Microsoft.Extensions.Logging;

namespace AgentHost.Llama.Models;

/// <summary>Leftovers of an unfinished download or build (<c>.part</c>, lock and digest files) in the user cache.</summary>
internal static partial class PartialFiles
{
    /// <summary>Deletes <paramref name="path"/>; a file that cannot be deleted is logged, never thrown, since the work it belonged to has its own outcome.</summary>
    public static void DeleteQuietly(string path, ILogger logger)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogNotDeleted(logger, path, e.Message);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not delete the partial file {Path}: {Reason}")]
    private static partial void LogNotDeleted(ILogger logger, string path, string reason);
}
