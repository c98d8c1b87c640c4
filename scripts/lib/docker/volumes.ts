// Named volumes: inspection and (re)creation with the labels Compose uses to adopt them.
import { getEngine } from "./engine.ts";

export interface VolumeSpec {
  name: string;
  driver: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Where the engine keeps the content (local driver: <data root>/volumes/<name>/_data). */
  mountpoint?: string;
}

export async function inspectVolume(name: string): Promise<VolumeSpec | undefined> {
  try {
    const info = await getEngine().getVolume(name).inspect();
    return { name: info.Name, driver: info.Driver, labels: info.Labels ?? {}, options: info.Options ?? {}, mountpoint: info.Mountpoint };
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

export async function createVolume(spec: VolumeSpec): Promise<void> {
  await getEngine().createVolume({ Name: spec.name, Driver: spec.driver, Labels: spec.labels, DriverOpts: spec.options });
}

export async function removeVolume(name: string): Promise<void> {
  await getEngine().getVolume(name).remove();
}
