// "VOLUME" as an operator types it: a volume id (40 hex characters, any case) or a volume name (SPEC.md: a name is
// accepted wherever a volume is). Names never look like ids (VolumeName), so the two never collide.
using CloudFs.BlockDevice;

namespace CloudFs.Actors.Management;

public static class VolumeResolver
{
    /// <summary>How the refusal for a volume that is not there begins (HTTP answers it with 404).</summary>
    public const string NotFound = "no volume ";

    /// <summary>The volume <paramref name="text"/> names in <paramref name="list"/>, or a CommandFailed saying why none.</summary>
    /// <param name="inTrash">Volumes in the trash count too (they are found by rm's refusal, restore and purge).</param>
    public static IManagementMessage Resolve(VolumeList list, string text, bool inTrash = true)
    {
        var candidates = list.Volumes.Where(v => inTrash || !v.IsTrashed);
        var found = Id160.TryParse(text, out var id)
            ? candidates.FirstOrDefault(v => v.Id == id.ToString())
            : candidates.FirstOrDefault(v => v.Name == text);
        return found ?? (IManagementMessage)Missing(text);
    }

    /// <summary>The refusal for a volume (an id or a name) that no host holds.</summary>
    public static CommandFailed Missing(string text) => new(Id160.TryParse(text, out _)
        ? $"{NotFound}{text.ToLowerInvariant()} on this cluster"
        : $"{NotFound}named '{text}' on this cluster");
}
