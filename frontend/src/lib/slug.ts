/** Organisation slugs: the API's rules, and the suggestion a form derives from the name. */
import { useState } from "react";

/** "Acme Robotics, Inc." -> "acme-robotics-inc" (the API's slug rules: 3-50 of a-z, 0-9, -). */
export function slugify(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50)
    .replace(/-+$/g, "");
}

/** A name and its slug: the slug follows the name until the user types one of their own (emptying it resumes). */
export function useNameAndSlug() {
  const [name, setNameValue] = useState("");
  const [slug, setSlugValue] = useState("");
  const [slugEdited, setSlugEdited] = useState(false);
  const setName = (value: string) => {
    setNameValue(value);
    if (!slugEdited) setSlugValue(slugify(value));
  };
  const setSlug = (value: string) => {
    setSlugValue(value.toLowerCase());
    setSlugEdited(value !== "");
  };
  return { name, slug, setName, setSlug };
}
