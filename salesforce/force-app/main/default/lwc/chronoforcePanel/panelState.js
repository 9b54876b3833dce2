// What the panel shows, derived from the Apex Panel (pure functions, tested on their own too).

export const STATUS_LABELS = {
    pending: 'Pending',
    label_created: 'Label created',
    picked_up: 'Picked up',
    in_transit: 'In transit',
    out_for_delivery: 'Out for delivery',
    available_for_pickup: 'At the relay point',
    delivery_attempted: 'Delivery attempted',
    delivered: 'Delivered',
    exception: 'Exception',
    returning: 'Returning',
    returned: 'Returned',
    cancelled: 'Cancelled'
};

// Cancelling is possible from the label until Chronopost picks the parcels up
// (chronoforce's BEFORE_PICKUP: pending, label_created).
const CANCELLABLE = ['pending', 'label_created'];

export function stateOf(panel) {
    if (!panel) {
        return 'loading';
    }
    if (panel.openException) {
        return 'exception';
    }
    if (panel.returnTrackingNumber || panel.status === 'returning' || panel.status === 'returned') {
        return 'return';
    }
    if (panel.status === 'delivered') {
        return 'delivered';
    }
    if (!panel.parcels || panel.parcels.length === 0) {
        return 'no_label';
    }
    if (panel.status === 'label_created' || panel.status === 'pending' || !panel.status) {
        return 'labeled';
    }
    return 'in_transit';
}

export function badgeOf(panel) {
    const status = panel && panel.status;
    const label = STATUS_LABELS[status] || (status ? status : 'No label yet');
    let reason = '';
    if (panel && panel.openException) {
        reason = panel.openException.message;
    } else if (panel && panel.lastError) {
        reason = panel.lastError;
    } else if (panel && panel.lastEvent) {
        reason = panel.lastEvent.label;
    }
    return { label, reason };
}

/** Whether the label can be cancelled now, and why not when it cannot. */
export function cancelWindow(panel) {
    const labeled = panel && panel.parcels && panel.parcels.length > 0;
    if (!labeled) {
        return {
            open: false,
            why: 'Not open yet: a label can be cancelled once it is created, until Chronopost picks the parcels up.'
        };
    }
    if (panel.status === 'cancelled') {
        return { open: false, why: 'This label is already cancelled.' };
    }
    if (!CANCELLABLE.includes(panel.status || 'label_created')) {
        const shown = STATUS_LABELS[panel.status] || panel.status;
        return {
            open: false,
            why: `Closed: the parcels are past pickup (${shown}); Chronopost no longer cancels this label.`
        };
    }
    return { open: true, why: 'Open until Chronopost picks the parcels up.' };
}

/** What to do about an open exception, from its code. */
export function adviceFor(exception) {
    const code = (exception && exception.code) || '';
    if (/ADDRESS|POSTAL|CITY|COUNTRY|FIELD_MISSING|PHONE|EMAIL/.test(code)) {
        return 'The address was held for review: review it below, pick a candidate or correct it, and chronoforce retries the label.';
    }
    if (code === 'NO_PRODUCT' || code.startsWith('ROUTING')) {
        return 'No Chronopost product fits this order: get the rates and choose one, then create the label.';
    }
    if (code.startsWith('CHRONOPOST_')) {
        return 'Chronopost refused the label: correct what its message names on the order, then create the label again.';
    }
    return 'chronoforce keeps retrying by itself; an operator can also retry or resolve it in chronoforce\'s console.';
}

/** {code, message, field} from an Apex error (AuraHandledException with a JSON message). */
export function refusalOf(error) {
    const raw = (error && error.body && error.body.message) || (error && error.message) || '';
    try {
        const parsed = JSON.parse(raw);
        if (parsed && parsed.code) {
            return { code: parsed.code, message: parsed.message || '', field: parsed.field || '' };
        }
    } catch (e) {
        // not chronoforce's JSON: shown as it came
    }
    return { code: 'ERROR', message: raw || 'The action failed.', field: '' };
}
