/**
 * Wraps an async task so that triggers while it runs fold into one more run after it: the task
 * never runs twice at once, and no trigger is lost.
 */
export function coalesce(task: () => Promise<void>, onError: (err: unknown) => void): () => void {
  let running = false;
  let again = false;
  const trigger = (): void => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    task()
      .catch(onError)
      .finally(() => {
        running = false;
        if (again) {
          again = false;
          trigger();
        }
      });
  };
  return trigger;
}
