/**
 * Splits a comma-separated list of URLs (AMQP_URL naming every node of a RabbitMQ cluster). A comma
 * starts the next URL only when a scheme follows it, so a comma inside a password stays where it is.
 */
export function splitUrlList(raw: string): string[] {
  return raw
    .split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
}
