namespace AgentHost.Llama;

/// <summary>The one argument check of the engine: a broken rule becomes the user-facing error.</summary>
internal static class Guard
{
    /// <summary>Throws <see cref="AgentHostException"/> (<see cref="ErrorKind.InvalidArgument"/>) with <paramref name="message"/> unless <paramref name="ok"/>.</summary>
    public static void Require(bool ok, string message)
    {
        if (!ok)
            throw new AgentHostException(ErrorKind.InvalidArgument, message);
    }
}
