/** A copy of a resource without the meta the server owns (versionId, lastUpdated): what a round trip must keep. */
export function withoutServerMeta(resource: Record<string, any>): unknown {
  const copy = structuredClone(resource);
  if (copy.meta) {
    delete copy.meta.versionId;
    delete copy.meta.lastUpdated;
    if (Object.keys(copy.meta).length === 0) delete copy.meta;
  }
  return copy;
}
