/**
 * The objects a bucket feed reads, from the `keyPattern` investigation printed: its placeholders
 * back into what they generalised — {n} digits, {uuid} a UUID, {hex} 16 or more hex digits,
 * {name} a file name up to its first dot — and the rest literal. Anchored: the whole key.
 */
export function keyPatternMatcher(pattern: string): RegExp {
  const parts = pattern.split(/(\{n\}|\{uuid\}|\{hex\}|\{name\})/);
  const source = parts
    .map((part) => {
      switch (part) {
        case '{n}':
          return '\\d+';
        case '{uuid}':
          return '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
        case '{hex}':
          return '[0-9a-fA-F]{16,}';
        case '{name}':
          return '[^/.]+';
        default:
          return part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
      }
    })
    .join('');
  return new RegExp(`^${source}$`);
}
