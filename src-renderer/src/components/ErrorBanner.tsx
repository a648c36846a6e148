import { useUi } from "../store/ui.ts";

// What the backend said went wrong; its messages already name the next step.
export function ErrorBanner() {
    const error = useUi((state) => state.error);
    const dismiss = useUi((state) => state.dismissError);
    if (!error) return null;
    return (
        <div role="alert" className="error-banner" data-testid="error-banner">
            <span>{error.message}</span>
            <button type="button" onClick={dismiss}>Dismiss</button>
        </div>
    );
}
