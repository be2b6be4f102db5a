namespace AgentHost.Llama.Models;

/// <summary>What to do with input characters the model's vocabulary cannot encode.</summary>
public enum UnsupportedCharacterPolicy
{
    /// <summary>Replace them (accents stripped where the base letter exists, else a space) and log a warning.</summary>
    Replace,
    /// <summary>Refuse the input with a clear error naming the first such character.</summary>
    Reject,
}
