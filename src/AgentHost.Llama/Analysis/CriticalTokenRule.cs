namespace AgentHost.Llama.Analysis;

/// <summary>
/// The critical-token rule of "Critical Tokens Matter" (cDPO, arXiv 2411.19943), as its official code applies
/// it to the counts c_i of correct rollouts per prefix: the earliest prefix with no correct rollout after which
/// no later prefix recovers (more than <c>recoverThreshold</c> correct); when every zero was followed by a
/// recovery, the candidate of the last recovery.
/// </summary>
public static class CriticalTokenRule
{
    /// <summary>The paper's recovery threshold (3) for its 64 rollouts per prefix.</summary>
    public const int PaperThreshold = 3;

    /// <summary>The paper's rollouts per prefix.</summary>
    public const int PaperRollouts = 64;

    /// <summary>The paper's threshold scaled to <paramref name="rollouts"/> per prefix: floor(3 n / 64), the paper's fraction.</summary>
    public static int DefaultRecoverThreshold(int rollouts) => PaperThreshold * rollouts / PaperRollouts;

    /// <summary>
    /// Index into <paramref name="correct"/> of the critical prefix, or -1 when no prefix has zero correct rollouts.
    /// </summary>
    /// <param name="correct">c_i for each analysed prefix, in prefix order.</param>
    /// <param name="recoverThreshold">A later prefix with more correct rollouts than this resets the candidate.</param>
    public static int Find(ReadOnlySpan<int> correct, int recoverThreshold)
    {
        var candidate = -1;
        var last = -1;
        var found = false;
        for (var i = 0; i < correct.Length; i++)
        {
            if (correct[i] == 0 && !found)
            {
                candidate = i;
                found = true;
            }
            if (found && correct[i] > recoverThreshold)
            {
                last = candidate;
                found = false;
            }
        }
        return found ? candidate : last;
    }
}
