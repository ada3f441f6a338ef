// Marker of the events a VolumeActor persists or recovers; the journal maps each onto one engine entry.
namespace CloudFs.Actors.Volumes.Events;

public interface IVolumeEvent;
