// Control message: one node's management actor asks another for its host id (cluster-wide host registry).
namespace CloudFs.Actors.Serialization;

/// <summary>Answered with a <see cref="Management.HostAddress"/> (host id hex, member address).</summary>
public sealed record GetHostAddress : IControlMessage
{
    public static readonly GetHostAddress Instance = new();
}
