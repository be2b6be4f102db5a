namespace AgentHost.Llama.Decoding.Speculative;

/// <summary>
/// The verifier's side of a walk down a draft tree (<see cref="DraftTree.Walk"/>): its choice at a node
/// and what happens to an emitted token. The engine implements it over the decoded logits; tests
/// script it.
/// </summary>
public interface IDraftVerifier
{
    /// <summary>The token the verifier chooses after <paramref name="node"/> (the argmax, or a draw, of that node's logits).</summary>
    int Choose(int node);

    /// <summary>Emits <paramref name="token"/>, chosen at <paramref name="node"/>; true when generation stops with it.</summary>
    bool Emit(int node, int token);
}
